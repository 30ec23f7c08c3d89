# Sourced by build-static.sh and record-start-path.sh: the flags of the static build,
# the same for both so that they share one set of compiled dependencies.
# crt-static: glibc linked in, for FROM-scratch images. No unwind tables
# (no-unwind-tables.ld): everything aborts on panic, so nothing unwinds, and a stripped
# binary's backtrace names nothing anyway.
triple=x86_64-unknown-linux-gnu
export RUSTFLAGS="-C target-feature=+crt-static -C force-unwind-tables=no \
-C link-arg=-Wl,--no-eh-frame-hdr -C link-arg=-Wl,-T,$PWD/docker/no-unwind-tables.ld \
${BOSUN_STATIC_RUSTFLAGS:-}"
