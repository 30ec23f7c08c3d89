#!/usr/bin/env bash
# Build bosun statically linked (glibc, crt-static) for FROM-scratch images.
#   docker/build-static.sh          bosun and its AWS helper
#                                   -> target/static/bosun, target/static/bosun-aws
#   docker/build-static.sh --lean   bosun alone  -> target/static/bosun
# Install both beside each other (/usr/local/bin): bosun starts bosun-aws only for
# --metrics cloudwatch or --queue-url, and works without it otherwise (the lean layer).
# bosun is the same binary either way: it never links the AWS SDK.
# Flags: docker/static-env.sh (crt-static, no unwind tables).
# bosun's start path (docker/start-path.txt) is laid out together by lld, so that start-up
# faults in a few 64 KiB windows of code rather than all of them (see start-path.py);
# without ld.lld the plain link is kept, with a warning.
set -euo pipefail
cd "$(dirname "$0")/.."
source docker/static-env.sh
mkdir -p target/static "${CARGO_TARGET_DIR:-target}"
target_dir="$(realpath "${CARGO_TARGET_DIR:-target}")/$triple/release"

link_bosun() {
    cargo rustc --release --quiet --target "$triple" --bin bosun --no-default-features -- "$@"
}
if command -v ld.lld >/dev/null 2>&1 && command -v nm >/dev/null 2>&1; then
    link_bosun -C strip=none
    python3 docker/start-path.py order "$target_dir/bosun" docker/start-path.txt \
        "$target_dir/bosun.symbol-order"
    # Named by its content: cargo relinks when the arguments change, and a new order
    # under the same name would leave the old layout in place.
    order="$target_dir/bosun.symbol-order.$(sha256sum "$target_dir/bosun.symbol-order" | cut -c1-12)"
    cp "$target_dir/bosun.symbol-order" "$order"
    link_bosun -C link-arg=-fuse-ld=lld -C "link-arg=-Wl,--symbol-ordering-file=$order" \
        -C link-arg=-Wl,--no-warn-symbol-ordering
else
    echo "build-static: no ld.lld (apt-get install lld): bosun linked without its start-path layout" >&2
    link_bosun
fi
cp "$target_dir/bosun" target/static/bosun
outs=(target/static/bosun)
if [ "${1:-}" != "--lean" ]; then
    # The helper alone needs the SDK; the deployer's crates stay out of it. Built for
    # size (profile.helper in Cargo.toml).
    cargo build --profile helper --quiet --target "$triple" --bin bosun-aws \
        --no-default-features --features aws
    cp "$target_dir/../helper/bosun-aws" target/static/
    outs+=(target/static/bosun-aws)
fi
for f in "${outs[@]}"; do echo "$f ($(stat -c %s "$f") bytes)"; done
