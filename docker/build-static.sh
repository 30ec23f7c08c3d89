#!/usr/bin/env bash
# Build bosun statically linked (glibc, crt-static) for FROM-scratch images.
#   docker/build-static.sh          bosun and its AWS helper
#                                   -> target/static/bosun, target/static/bosun-aws
#   docker/build-static.sh --lean   bosun alone, without the AWS code
#                                   -> target/static/bosun-lean
# Install both of the first beside each other (/usr/local/bin): bosun starts bosun-aws
# only for --metrics cloudwatch or --queue-url.
# No unwind tables: the release profile aborts on panic, nothing ever unwinds.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="-C target-feature=+crt-static -C force-unwind-tables=no ${BOSUN_STATIC_RUSTFLAGS:-}"
target_dir="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release"
mkdir -p target/static
if [ "${1:-}" = "--lean" ]; then
    cargo build --release --quiet --target x86_64-unknown-linux-gnu --bin bosun --no-default-features
    cp "$target_dir/bosun" target/static/bosun-lean
    outs=(target/static/bosun-lean)
else
    cargo build --release --quiet --target x86_64-unknown-linux-gnu --bin bosun --bin bosun-aws
    cp "$target_dir/bosun" "$target_dir/bosun-aws" target/static/
    outs=(target/static/bosun target/static/bosun-aws)
fi
for f in "${outs[@]}"; do echo "$f ($(stat -c %s "$f") bytes)"; done
