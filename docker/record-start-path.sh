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
    > "$out/recorded"
cp "$out/recorded" docker/start-path.txt
# What valgrind cannot see, found natively: the vDSO's setup (valgrind has no vDSO),
# the forked child before its exec (not traced), the string functions this CPU's
# IFUNCs pick, locks taken only natively. Each round links bosun in the order so far,
# runs it under perf's page-fault event, and puts the functions that faulted first;
# with the kernel's fault-around each round shows the next windows' first touches, until
# a round finds nothing new (at most 12).
if command -v perf >/dev/null 2>&1 && command -v ld.lld >/dev/null 2>&1; then
    : > "$out/native.off"; : > "$out/native.on"
    for round in $(seq 12); do
        before=$(cat "$out/native.off" "$out/native.on" | sort -u | wc -l)
        python3 docker/start-path.py order "$bin" docker/start-path.txt "$out/order.$round"
        cargo rustc --release --quiet --target "$triple" --bin bosun --no-default-features -- \
            -C strip=none -C link-arg=-fuse-ld=lld \
            -C "link-arg=-Wl,--symbol-ordering-file=$out/order.$round" -C link-arg=-Wl,--no-warn-symbol-ordering
        cp "$bin" "$out/bosun.$round"
        # A file written moments ago sits in the page cache in large folios, and a fault
        # maps a whole folio: dropped, the binary is read in the pages a task reads.
        sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || echo "start path: page cache not dropped (needs root)" >&2
        perf record -q -e page-faults -c 1 -d -o "$out/pf.off.$round" "$out/bosun.$round" --listen off -- sleep 0.3 2>/dev/null
        sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
        perf record -q -e page-faults -c 1 -d -o "$out/pf.on.$round" "$out/bosun.$round" --listen 127.0.0.1:0 -- sleep 0.3 2>/dev/null
        python3 docker/start-path.py native "$out/bosun.$round" "$out/pf.off.$round" >> "$out/native.off"
        python3 docker/start-path.py native "$out/bosun.$round" "$out/pf.on.$round" >> "$out/native.on"
        # Every run's start first; the endpoint's after the runs without it.
        { echo "# native, endpoint off (perf page faults)"; awk '!seen[$0]++' "$out/native.off"
          sed '/^# probe/,$d' "$out/recorded"
          echo "# native, endpoint on (perf page faults)"; awk '!seen[$0]++' "$out/native.on"
          sed -n '/^# probe/,$p' "$out/recorded"; } > docker/start-path.txt
        after=$(cat "$out/native.off" "$out/native.on" | sort -u | wc -l)
        echo "start path: round $round, $((after - before)) functions found natively" >&2
        [ "$after" -gt "$before" ] || break
    done
fi
echo "docker/start-path.txt: $(grep -vc '^#' docker/start-path.txt) functions"
