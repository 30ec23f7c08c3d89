#!/usr/bin/env bash
# Build bosun (static as images ship it, lean static, dynamic) and run the PID-1
# benchmarks side by side with the peers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash docker/build-static.sh
bash docker/build-static.sh --lean
cargo build --release --quiet --bin bosun --bin bosun-aws
python3 bench/pid1.py --bosun target/static/bosun --lean target/static/bosun-lean \
  --dynamic target/release/bosun "$@"
