#!/usr/bin/env bash
# Install bosun and bosun-deploy from this checkout:
#   ./install.sh [PREFIX]     default /usr/local as root, else ~/.local
# into PREFIX/bin: bosun and bosun-aws statically linked (docker/build-static.sh: they
# go into images, FROM scratch included) and bosun-deploy (the deployer; it finds the
# static bosun beside itself). Needs cargo (rustup) and a C toolchain; lld is used when
# present. Nothing outside PREFIX/bin and this checkout's target/ is written.
set -euo pipefail
cd "$(dirname "$0")"
prefix="${1:-${PREFIX:-}}"
if [ -z "$prefix" ]; then
    if [ "$(id -u)" = 0 ]; then prefix=/usr/local; else prefix="$HOME/.local"; fi
fi
echo "install: static bosun and bosun-aws (docker/build-static.sh)" >&2
docker/build-static.sh
echo "install: bosun-deploy (cargo build --profile deploy)" >&2
cargo build --quiet --profile deploy --bin bosun-deploy
install -d "$prefix/bin"
install -m 0755 target/static/bosun target/static/bosun-aws target/deploy/bosun-deploy "$prefix/bin/"
for b in bosun bosun-aws bosun-deploy; do echo "$prefix/bin/$b"; done
case ":$PATH:" in
    *":$prefix/bin:"*) ;;
    *) echo "install: $prefix/bin is not on PATH: export PATH=\"$prefix/bin:\$PATH\"" >&2 ;;
esac
