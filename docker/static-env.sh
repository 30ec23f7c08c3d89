# Sourced by build-static.sh and record-start-path.sh: the flags of the static build,
# the same for both so that they share one set of compiled dependencies.
# crt-static: glibc linked in, for FROM-scratch images. No unwind tables
# (no-unwind-tables.ld): everything aborts on panic, so nothing unwinds, and a stripped
# binary's backtrace names nothing anyway.
# relocation-model=static: a static executable at a fixed address, as tini-static and
# catatonit are, rather than a static PIE. A static PIE relocates itself on every start
# (tens of microseconds and a private copy of every page of pointers it writes: 1.11
# against 1.00 MiB peak RSS, 1.06 against 0.90x catatonit's start-up, bench/pid1.py);
# what it bought is a random address for bosun's own code. Stack, heap and every mapping
# bosun makes are still placed at random.
triple=x86_64-unknown-linux-gnu
export RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static \
-C force-unwind-tables=no -C symbol-mangling-version=v0 \
-C link-arg=-Wl,--no-eh-frame-hdr -C link-arg=-Wl,-T,$PWD/docker/no-unwind-tables.ld \
${BOSUN_STATIC_RUSTFLAGS:-}"
