#!/usr/bin/env python3
"""Endpoint benchmarks: wrk against /readyz (throughput, p99, RSS before/after ~1M
requests) and `bosun probe` against `curl -fsS` on the same URL (hyperfine).
Side by side in one run, ratios printed; nothing here is asserted.
Usage: bench/endpoint.py [--bosun PATH] [--requests N]
"""
import argparse, json, re, shutil, signal, subprocess, tempfile, time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(l for l in f if l.startswith("VmRSS")).split()[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bosun", default="target/release/bosun")
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--port", type=int, default=19931)
    a = ap.parse_args()
    addr = f"127.0.0.1:{a.port}"
    url = f"http://{addr}/readyz"
    p = subprocess.Popen([a.bosun, "--listen", addr, "--", "sleep", "3600"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while subprocess.run(["curl", "-fsS", "-o", "/dev/null", url]).returncode != 0:
            if time.time() > deadline:
                raise SystemExit("bosun endpoint did not come up")
            time.sleep(0.05)
        before = rss_kib(p.pid)
        print(f"== wrk on {url} (2 threads, 64 connections) until ~{a.requests} requests ==")
        done, total_time, p99s, rates = 0, 0.0, [], []
        while done < a.requests:
            out = subprocess.run(["wrk", "-t2", "-c64", "-d10s", "--latency", url], capture_output=True, text=True, timeout=60).stdout
            n = int(re.search(r"(\d+) requests in", out).group(1))
            rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
            p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
            done += n
            rates.append(rate)
            p99s.append(p99_ms)
            print(f"  {n:>9} requests  {rate:>10.0f} req/s  p99 {p99_ms:.2f} ms")
        after = rss_kib(p.pid)
        print(f"  total {done} requests; mean {sum(rates)/len(rates):.0f} req/s (target >= 20000), worst p99 {max(p99s):.2f} ms (target < 5 ms)")
        print(f"  bosun RSS before {before/1024:.2f} MiB, after {after/1024:.2f} MiB, growth {(after-before)/1024:.2f} MiB (target <= 1 MiB)")

        print(f"\n== probe vs curl on {url} (hyperfine, median of 500) ==")
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            cmds = [f"{a.bosun} probe --url {url}", f"curl -fsS -o /dev/null {url}"]
            subprocess.run(["hyperfine", "-N", "--warmup", "50", "--runs", "500", "--export-json", out.name, *cmds],
                           check=True, stdout=subprocess.DEVNULL)
            res = {r["command"]: r["median"] * 1000 for r in json.load(open(out.name))["results"]}
        for c, ms in res.items():
            print(f"  {ms:7.3f} ms  {c}")
        print(f"  ratio probe/curl: {res[cmds[0]] / res[cmds[1]]:.2f}x (target <= 1.0x)")
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)


if __name__ == "__main__":
    main()
