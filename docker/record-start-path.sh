#!/usr/bin/env bash
# Record bosun's start path with callgrind and rewrite docker/start-path.txt, which
# docker/build-static.sh lays out together. Re-run it after changing what bosun does at
# start, on stop, or in its endpoint; a stale list costs memory, never correctness.
# Records: `-- true`; a stop on TERM; endpoint, health checks and metrics with requests
# to every route; `bosun probe`.
set -euo pipefail
cd "$(dirname "$0")/.."
source docker/static-env.sh
cargo rustc --release --quiet --target "$triple" --bin bosun --no-default-features -- -C strip=none
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/$triple/release/bosun"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# bosun's default level (info): its start lines, and the run-summary line, are on the
# path every container runs.
unset BOSUN_LOG
cg() { local name=$1; shift
    exec valgrind --quiet --tool=callgrind --demangle=no --compress-strings=no --dump-instr=no \
        --callgrind-out-file="$out/$name" "$bin" "$@"; }
(cg true --listen off -- true)
(BOSUN_LOG=warn cg warn --listen off -- true)
(cg fail --listen off --log-format json -- sh -c 'exit 3') || true
(cg stop --listen off --stop-timeout 1 -- sh -c 'trap "exit 0" TERM; sleep 30 & wait') &
sleep 3; kill -TERM $!; wait $! || true
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cg svc --listen "127.0.0.1:$port" --metrics prometheus,emf --metrics-interval 0.3 \
    --health-cmd true --health-interval 0.3 --stop-timeout 1 -- sleep 100 >/dev/null) &
svc=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/livez" >/dev/null && break; sleep 0.1; done
sleep 2
for route in readyz livez status metrics; do curl -s "http://127.0.0.1:$port/$route" >/dev/null; done
(cg probe probe --url "http://127.0.0.1:$port/readyz")
kill -TERM $svc; wait $svc || true
python3 docker/start-path.py record "$bin" "$out/true" "$out/warn" "$out/fail" "$out/stop" "$out/probe" "$out/svc" \
    > docker/start-path.txt
echo "docker/start-path.txt: $(wc -l < docker/start-path.txt) functions"
