#!/usr/bin/env python3
"""PID-1 benchmarks: bosun side by side with tini, dumb-init and catatonit, in one run.

Prints each figure and bosun's ratio to the peers. Never run by the tests: timings are
reported here, not asserted. "bosun" is the static build that images ship
(docker/build-static.sh); "bosun-dynamic" is `cargo build --release`, compared like for
like with Debian's dynamically linked tini. Usage: bench/run.sh (builds all and runs
this), or bench/pid1.py --bosun PATH [--dynamic PATH]
"""
import argparse, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time

PEERS = {
    "tini": ["tini", "-s", "--"],
    "tini-static": ["tini-static", "-s", "--"],
    "dumb-init": ["dumb-init"],
    "catatonit": ["catatonit", "--"],
}


def have(cmd):
    return shutil.which(cmd[0]) is not None


def hyperfine_median(commands, runs):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            ["hyperfine", "-N", "--warmup", "50", "--runs", str(runs), "--export-json", out.name, *commands],
            check=True, stdout=subprocess.DEVNULL,
        )
        data = json.load(open(out.name))
    return {r["command"]: r["median"] for r in data["results"]}


def startup(entries, runs, rounds):
    """Wall-clock start-up: hyperfine runs each command's runs in one block, so a drift
    of the machine lands on one entry; `rounds` rounds, and the median of their medians."""
    print(f"\n== startup: ENTRY -- true (hyperfine, median of {runs}, median of {rounds} rounds) ==")
    cmds = {name: " ".join(argv + ["true"]) for name, argv in entries.items()}
    per_round = []
    for _ in range(rounds):
        med = hyperfine_median(list(cmds.values()), runs)
        per_round.append({name: med[c] * 1000 for name, c in cmds.items()})
    res = {name: statistics.median(r[name] for r in per_round) for name in cmds}
    for name, ms in res.items():
        print(f"  {name:<22} {ms:7.3f} ms")
    if "catatonit" in res and rounds > 1:
        each = ", ".join(f"{r['bosun'] / r['catatonit']:.2f}" for r in per_round)
        print(f"  bosun/catatonit in each round: {each}")
    return res


def startup_cpu(entries, runs):
    """CPU time of a start-up (both processes, user and kernel: perf's task-clock), which
    the machine's scheduling noise moves far less than the wall clock."""
    if not shutil.which("perf"):
        print("\n(perf not installed: no start-up CPU time)")
        return {}
    print(f"\n== startup CPU time: ENTRY -- true (perf stat task-clock, mean of {runs}) ==")
    res = {}
    for name, argv in entries.items():
        out = subprocess.run(
            ["perf", "stat", "-x,", "-e", "task-clock", "-r", str(runs), *argv, "true"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        line = next((l for l in out.stderr.splitlines() if "task-clock" in l), "")
        try:
            res[name] = float(line.split(",")[0])
            print(f"  {name:<22} {res[name]:7.3f} ms")
        except ValueError:
            print(f"  {name:<22} failed: {out.stderr[-200:]}")
    return res


def drop_page_cache():
    """A binary written moments ago sits in the page cache in large folios, and the
    first fault maps a whole folio: its RSS then counts code it never ran (1.98 against
    1.29 MiB for the same bosun). Dropped caches give every entry the 4 KiB pages of a
    binary read from an image layer."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return "page cache dropped first"
    except OSError:
        return "page cache NOT dropped (needs root): a freshly built bosun reads high"


def peak_rss(entries, env=None):
    """Peak RSS of each entry supervising `sleep 2`. `env`: extra variables per entry
    name (bosun's log level)."""
    print(f"\n== peak RSS (VmHWM) supervising `sleep 2`; {drop_page_cache()} before each ==")
    res = {}
    for name, argv in entries.items():
        # Before each entry: the kernel maps the cached pages around a faulting one
        # (fault-around), so an entry run after another of the same binary would count
        # pages the first one read in.
        drop_page_cache()
        e = dict(os.environ)
        e.pop("BOSUN_LOG", None)
        e.update((env or {}).get(name, {}))
        p = subprocess.Popen(argv + ["sleep", "2"], env=e, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        with open(f"/proc/{p.pid}/status") as f:
            hwm = next(l for l in f if l.startswith("VmHWM")).split()[1]
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)
        res[name] = int(hwm) / 1024
        print(f"  {name:<22} {res[name]:6.2f} MiB")
    return res


ORPHANS = r"""
import os, signal, sys, time
n = int(sys.argv[1])
parent = os.getppid()
me = str(os.getpid())
r, w = os.pipe()
if os.fork() == 0:
    for _ in range(n):
        if os.fork() == 0:
            os.close(w); os.read(r, 1); os._exit(0)
    os._exit(0)
os.close(r); os.wait()
time.sleep(0.5)
# Freeze the supervisor, let every orphan exit, and time only the reaping.
os.kill(parent, signal.SIGSTOP)
os.close(w)
def zombies():
    kids = open(f"/proc/{parent}/task/{parent}/children").read().split()
    z = 0
    for k in kids:
        try:
            if open(f"/proc/{k}/stat").read().rsplit(")", 1)[1].split()[0] == "Z":
                z += 1
        except OSError:
            pass
    return z
while zombies() < n:
    time.sleep(0.01)
t0 = time.monotonic()
os.kill(parent, signal.SIGCONT)
while open(f"/proc/{parent}/task/{parent}/children").read().split() != [me]:
    time.sleep(0.0002)
print(f"{time.monotonic() - t0:.4f}", flush=True)
"""


def reaping(entries, n):
    print(f"\n== reaping: {n} zombie orphans waiting, from SIGCONT of the supervisor until all are reaped ==")
    res = {}
    for name, argv in entries.items():
        try:
            out = subprocess.run(argv + [sys.executable, "-c", ORPHANS, str(n)], capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            # dumb-init, when not PID 1, is no subreaper: the orphans never reach it.
            print(f"  {name:<22} n/a (orphans are not re-parented to it outside PID 1)")
            continue
        try:
            res[name] = float(out.stdout.strip().splitlines()[-1]) * 1000
            print(f"  {name:<22} {res[name]:8.1f} ms")
        except (IndexError, ValueError):
            print(f"  {name:<22} failed: {out.stderr[-300:]}")
    return res


def stop_overhead(entries, rounds):
    print(f"\n== stop: TERM to the entrypoint, worker exits at once on TERM, until the entrypoint is gone (median of {rounds}) ==")
    res = {}
    for name, argv in entries.items():
        samples = []
        for _ in range(rounds):
            p = subprocess.Popen(argv + ["sleep", "100"], stderr=subprocess.DEVNULL)
            time.sleep(0.05)
            t0 = time.monotonic()
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)
            samples.append((time.monotonic() - t0) * 1000)
        res[name] = statistics.median(samples)
        print(f"  {name:<22} {res[name]:7.3f} ms")
    return res


def ratios(title, res):
    if "bosun" not in res:
        return
    b = res["bosun"]
    parts = [f"{b / v:.2f}x {k}" for k, v in res.items() if not k.startswith("bosun") and v]
    print(f"  ratio bosun/peer ({title}): " + ", ".join(parts))
    if "bosun-dynamic" in res and res.get("tini"):
        print(f"  like for like, dynamic/dynamic: bosun-dynamic/tini {res['bosun-dynamic'] / res['tini']:.2f}x")


def size_mib(path):
    return os.path.getsize(path) / 1048576 if path and os.path.exists(path) else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bosun", default="target/static/bosun", help="the static build (docker/build-static.sh)")
    ap.add_argument("--dynamic", default=None, help="a dynamic build (cargo build --release)")
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3, help="start-up rounds (median of their medians)")
    ap.add_argument("--orphans", type=int, default=10000)
    a = ap.parse_args()

    entries = {"bosun": [a.bosun, "--listen", "off", "--"]}
    entries_default = {"bosun (endpoint on)": [a.bosun, "--listen", "127.0.0.1:0", "--"]}
    if a.dynamic:
        entries["bosun-dynamic"] = [a.dynamic, "--listen", "off", "--"]
    for name, argv in PEERS.items():
        if have(argv):
            entries[name] = argv
        else:
            print(f"(peer {name} not installed: skipped)")

    # Start-up at bosun's defaults (info: its start lines are written), beside warn.
    os.environ.pop("BOSUN_LOG", None)
    res = startup({**entries, **entries_default}, a.runs, a.rounds)
    ratios("startup", res)
    print("  target: bosun <= 1.0x catatonit (info, its default level)")
    res = startup_cpu(entries, a.runs)
    ratios("startup CPU", res)
    # Peak RSS as users run it: the defaults (info, endpoint on), the endpoint off, and
    # warn (no start lines), each beside the peers, in one run.
    rss_entries = {
        "bosun": [a.bosun, "--listen", "off", "--"],
        "bosun (endpoint on)": [a.bosun, "--listen", "127.0.0.1:0", "--"],
        "bosun (warn)": [a.bosun, "--listen", "off", "--"],
        **{k: v for k, v in entries.items() if k != "bosun"},
    }
    res = peak_rss(rss_entries, env={"bosun (warn)": {"BOSUN_LOG": "warn"}})
    ratios("peak RSS", res)
    print("  targets: bosun (info, endpoint off) <= 1.0 MiB; bosun (endpoint on, its default) <= 1.25 MiB")
    print("\n== stripped binary size (lean = bosun alone, full = bosun + its AWS helper bosun-aws) ==")
    for label, path in [("static", a.bosun), ("dynamic", a.dynamic)]:
        b = size_mib(path)
        if b is None:
            continue
        h = size_mib(os.path.join(os.path.dirname(path), "bosun-aws"))
        full = f", full {b + h:6.2f} MiB (bosun-aws {h:.2f})" if h is not None else ""
        print(f"  {label:<8} lean {b:6.2f} MiB{full}")
    for peer in ["tini", "tini-static", "dumb-init", "catatonit"]:
        p = shutil.which(peer)
        if p:
            print(f"  {peer:<14} {os.path.getsize(p) / 1048576:6.2f} MiB")
    print("  targets: lean <= 2 MiB, full <= 8 MiB")
    res = reaping(entries, a.orphans)
    ratios("reaping", res)
    print("  target: bosun < 1000 ms")
    res = stop_overhead(entries, 30)
    ratios("stop", res)
    print("  target: bosun < 10 ms")


if __name__ == "__main__":
    main()
