#!/usr/bin/env bash
# Build bosun (static as images ship it, and dynamic) and run the PID-1 benchmarks
# side by side with the peers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash docker/build-static.sh
cargo build --release --quiet --bin bosun --bin bosun-aws
python3 bench/pid1.py --bosun target/static/bosun --dynamic target/release/bosun "$@"
