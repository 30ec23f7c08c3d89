#!/usr/bin/env bash
# Build bosun (full, lean, static) and run every benchmark side by side with its peers.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
cp target/release/bosun target/bosun-full
cargo build --release --quiet --no-default-features
cp target/release/bosun target/bosun-lean
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --quiet --target x86_64-unknown-linux-gnu
python3 bench/pid1.py --bosun target/bosun-full --lean target/bosun-lean \
  --static target/x86_64-unknown-linux-gnu/release/bosun "$@"
