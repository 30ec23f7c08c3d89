#!/usr/bin/env bash
# Build bosun statically linked (glibc, crt-static) for FROM-scratch images.
#   docker/build-static.sh          full build (AWS)   -> target/static/bosun
#   docker/build-static.sh --lean   lean build (no AWS) -> target/static/bosun-lean
set -euo pipefail
cd "$(dirname "$0")/.."
features=()
out=bosun
if [ "${1:-}" = "--lean" ]; then
    features=(--no-default-features)
    out=bosun-lean
fi
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --quiet \
    --target x86_64-unknown-linux-gnu --bin bosun "${features[@]}"
mkdir -p target/static
cp "${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/bosun" "target/static/$out"
echo "target/static/$out ($(stat -c %s "target/static/$out") bytes)"
