#!/usr/bin/env python3
"""Symbol names of bosun's start path, for the linker's --symbol-ordering-file.

The kernel maps an executable's code in 64 KiB windows around every page that is
touched, so code run at start-up that lies scattered across the binary makes every
page of it resident. Laid out together, the start path takes a few windows.
docker/start-path.txt lists it by demangled name (no crate hashes, so it survives
version, feature and compiler changes); callgrind records it (record), and the link maps
it back to the mangled names of the binary at hand (order).

  start-path.py names BINARY                       demangled names of BINARY's symbols
  start-path.py record BINARY CALLGRIND.OUT...     docker/start-path.txt from runs
  start-path.py order BINARY START-PATH OUT        the ordering file for BINARY's link
  start-path.py native BINARY PERF.DATA...         functions of BINARY whose code took a
                                                   page fault in perf's recordings
"""
import os, re, subprocess, sys


def symbols(binary):
    """(mangled, demangled) of every symbol, from binutils' nm."""
    def name(line):
        # "ADDRESS TYPE NAME", or "TYPE NAME" for undefined symbols; demangled names
        # hold spaces of their own.
        first = line.split(maxsplit=1)
        if len(first) == 2 and len(first[0]) == 1:
            return first[1]
        parts = line.split(maxsplit=2)
        return parts[2] if len(parts) == 3 else ""

    def nm(*flags):
        out = subprocess.run(["nm", "--no-sort", *flags, binary], capture_output=True, text=True, check=True).stdout
        return [name(l) for l in out.splitlines()]
    return [(m, d) for m, d in zip(nm(), nm("--demangle")) if m]


def record(binary, outs):
    demangled = dict(symbols(binary))
    names, seen = [], set()
    for path in outs:
        names.append(f"# {os.path.basename(path)}")
        for line in open(path):
            if line.startswith("fn="):
                mangled = re.sub(r"'\d+$", "", line[3:].strip())
                name = demangled.get(mangled)
                if name and name not in seen:
                    seen.add(name)
                    names.append(name)
    sys.stdout.write("".join(n + "\n" for n in names))


def order(binary, start_path, out):
    by_name = {}
    for mangled, name in symbols(binary):
        by_name.setdefault(name, []).append(mangled)
    wanted = [l.rstrip("\n") for l in open(start_path) if l.strip() and not l.startswith("#")]
    # glibc picks its string functions by the CPU at start (IFUNC): the recording
    # machine's valgrind picked one variant (`__memcpy_avx_unaligned_erms`), a task's
    # CPU may pick another (`__memcpy_evex_unaligned_erms`). Each listed variant brings
    # its siblings along.
    variant = re.compile(r"^__((?:mem|str|stp|wmem|wcs|rawmem)[a-z]*)_(?:sse|ssse|avx|evex|erms|unaligned)")
    names = list(by_name)
    with_siblings = []
    for name in wanted:
        with_siblings.append(name)
        m = variant.match(name)
        if m:
            with_siblings.extend(n for n in names if n.startswith(f"__{m.group(1)}_") and variant.match(n))
    wanted = list(dict.fromkeys(with_siblings))
    ordered = [m for name in wanted for m in by_name.get(name, [])]
    with open(out, "w") as f:
        f.write("".join(m + "\n" for m in dict.fromkeys(ordered)))
    found = sum(1 for name in wanted if name in by_name)
    print(f"start path: {found} of {len(wanted)} functions found in {binary}", file=sys.stderr)


def native(binary, datas):
    """The functions in which a run of BINARY took page faults on its own code, in
    order: `perf record -e page-faults -d` gives each fault's address. With the
    kernel's fault-around, only the first touch of each 64 KiB window faults: the
    function that brought that window in."""
    syms = []
    out = subprocess.run(["nm", "-n", "-S", "--demangle", "--defined-only", binary],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = re.match(r"([0-9a-f]+) ([0-9a-f]+) [tTwW] (.*)", line)
        if m:
            syms.append((int(m[1], 16), int(m[2], 16), m[3]))
    starts = [a for a, _, _ in syms]
    import bisect
    names = []
    for data in datas:
        out = subprocess.run(["perf", "script", "-i", data, "-F", "addr"],
                             capture_output=True, text=True, check=True).stdout
        for line in out.split():
            try:
                addr = int(line, 16)
            except ValueError:
                continue
            i = bisect.bisect_right(starts, addr) - 1
            if i >= 0 and syms[i][0] <= addr < syms[i][0] + max(syms[i][1], 1):
                names.append(syms[i][2])
    sys.stdout.write("".join(n + "\n" for n in dict.fromkeys(names)))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "names":
        sys.stdout.write("".join(d + "\n" for _, d in symbols(args[0])))
    elif cmd == "record":
        record(args[0], args[1:])
    elif cmd == "order":
        order(*args)
    elif cmd == "native":
        native(args[0], args[1:])
    else:
        sys.exit(__doc__)
