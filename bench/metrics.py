#!/usr/bin/env python3
"""Metrics benchmarks, printed (never asserted):
 1. sampling cost: bosun's own CPU time while sampling every second for 60 s, against
    tini supervising the same worker in the same run;
 2. API calls per interval, counted by moto's recorder, scaled to a task-hour at the
    default 60 s interval, and what they cost a month at list prices.
Usage: bench/metrics.py [--bosun PATH] [--seconds N]
"""
import argparse, os, re, signal, socket, subprocess, tempfile, time, urllib.request

import moto_recording



def cpu_seconds(pid):
    """CPU time of every thread of pid, from schedstat (nanoseconds, not clock ticks)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[0])
        except OSError:
            pass
    return total / 1e9


def hwm_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(l for l in f if l.startswith("VmHWM")).split()[1]) / 1024


def helper_of(pid):
    """The pid of bosun-aws, the child bosun starts for CloudWatch and SQS."""
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            comm, rest = stat.rsplit(")", 1)
            if comm.endswith("(bosun-aws") and int(rest.split()[1]) == pid:
                return int(d)
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bosun", default="target/release/bosun")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--moto", default=os.path.abspath(".venv/bin/moto_server"))
    a = ap.parse_args()

    print(f"== sampling cost: 1 s interval for {a.seconds} s (emf to /dev/null), endpoint off ==")
    procs = {
        "bosun": subprocess.Popen([a.bosun, "--listen", "off", "--metrics", "emf", "--metrics-interval", "1", "--", "sleep", "3600"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        "tini": subprocess.Popen(["tini", "-s", "--", "sleep", "3600"]),
    }
    time.sleep(1)
    start = {k: cpu_seconds(p.pid) for k, p in procs.items()}
    time.sleep(a.seconds)
    for k, p in procs.items():
        used = cpu_seconds(p.pid) - start[k]
        print(f"  {k:<6} {used:8.5f} CPU-s in {a.seconds} s = {used / a.seconds * 100:.4f} % of one core"
              + ("  (target <= 0.1 %)" if k == "bosun" else ""))
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)

    print("\n== AWS calls (moto recorder), cloudwatch sink + queue, 1 s interval for 20 s ==")
    port = free_port()
    moto = subprocess.Popen([a.moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=tempfile.mkdtemp())
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        env = dict(os.environ, AWS_ENDPOINT_URL=base, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y")
        venv_python = os.path.join(os.path.dirname(a.moto), "python")
        url = subprocess.run([venv_python, "-c",
                              "import boto3,sys; print(boto3.client('sqs', endpoint_url=sys.argv[1], region_name='us-east-1',"
                              " aws_access_key_id='x', aws_secret_access_key='y').create_queue(QueueName='bench')['QueueUrl'])",
                              base], capture_output=True, text=True, check=True).stdout.strip()
        moto_recording.start(base)
        p = subprocess.Popen([a.bosun, "--listen", "off", "--metrics", "cloudwatch", "--metrics-interval", "1", "--queue-url", url,
                              "--", "sleep", "3600"], env=env, stderr=subprocess.DEVNULL)
        time.sleep(20.5)
        if p.poll() is not None:
            raise SystemExit(f"{a.bosun} exited with {p.returncode}: is bosun-aws beside it? (cargo build --release --bins)")
        helper = helper_of(p.pid)
        print(f"  peak RSS while publishing: bosun {hwm_mib(p.pid):.2f} MiB, its AWS helper bosun-aws "
              + (f"{hwm_mib(helper):.2f} MiB" if helper else "not found"))
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)
        calls = {}
        stamps = set()
        for action, body in moto_recording.requests(base):
            calls[action] = calls.get(action, 0) + 1
            if action == "PutMetricData":
                stamps.update(re.findall(r"Timestamp=([^&]+)", body))
        # Each sample's datapoints share its timestamp: distinct timestamps = samples
        # that arrived (a late one may share a call with the next).
        samples = len(stamps)
        print(f"  {samples} samples arrived (20 intervals + the final flush: 21 expected)")
        for k, v in sorted(calls.items()):
            print(f"  {k:<22} {v:3d} calls for {samples} samples = {v / samples:.2f} per interval")
        per_hour = {k: v / samples * 60 for k, v in calls.items()}
        print("\n== at the default 60 s interval, per task ==")
        for k, v in sorted(per_hour.items()):
            print(f"  {k:<22} {v:5.0f} calls per task-hour (target <= 60)")
        month_h = 730
        put = per_hour.get("PutMetricData", 0) * month_h
        sqs = per_hour.get("GetQueueAttributes", 0) * month_h
        print(f"  a month: {put:.0f} PutMetricData x $0.01/1000 = ${put * 0.01 / 1000:.2f}; "
              f"{sqs:.0f} GetQueueAttributes x $0.40/1M = ${sqs * 0.40 / 1e6:.3f} (per task)")
        put_1s = calls.get("PutMetricData", 0) / samples * 3600 * month_h
        print(f"  at the 1 s interval measured here: {put_1s:.0f} PutMetricData a month = ${put_1s * 0.01 / 1000:.2f} per task "
              f"(batched; a call per sample would be {3600 * month_h} = ${3600 * month_h * 0.01 / 1000:.2f})")
        print("  plus 7 custom metrics per service (dimensions ServiceName, ClusterName: shared by its tasks) x $0.30 = $2.10 a month")
    finally:
        moto.terminate()
        moto.wait(timeout=10)


if __name__ == "__main__":
    main()
