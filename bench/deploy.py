#!/usr/bin/env python3
"""bosun-deploy benchmarks, printed (never asserted):
 1. validate and render of a 50-resource stack (hyperfine, median; target <= 50 ms);
 2. the AWS calls of a first apply and of a no-change apply (moto recorder);
 3. one worker service on EC2 (`instanceTypes`: instance role and profile, launch
    template, Auto Scaling group, capacity provider) beside the same worker on Fargate:
    calls and time of a first and of a no-change apply;
 4. a 25-resource stack (10 queues, 10 workers with scaling, 5 jobs) and a 250-resource
    one (100, 100, 50) through a proxy that adds 50 ms to every call (a region's round
    trip): calls, the most in flight at once, time, the physical floor (calls divided
    by the calls in flight at once, times 50 ms), and the speed-up against the same
    calls made one at a time (calls x 50 ms) and against BOSUN_DEPLOY_CONCURRENCY=1.
Usage: bench/deploy.py [--deploy PATH]
"""
import argparse, http.client, http.server, json, os, socket, subprocess, tempfile, threading, time, urllib.request

import moto_recording


def stack(subnets, n_queues=10, n_services=25, n_jobs=15):
    lines = ["stack: bench", "cluster: bench", "network:", f"  subnets: [{', '.join(subnets)}]", "resources:"]
    for i in range(n_queues):
        lines += [f"  q{i}:", "    type: sqs-queue", "    properties: { visibilityTimeoutSeconds: 120, deadLetterQueue: { maxReceiveCount: 5 } }"]
    for i in range(n_services):
        lines += [f"  svc{i}:", "    type: worker-service", "    properties:",
                  "      packaging: { type: prebuilt-image, properties: { image: repo/app:1 } }",
                  "      command: [node, main.js]", f"      connectTo: [q{i % n_queues}]",
                  "      environment: [{ name: A, value: b }, { name: S, value: \"$Secret('db.password')\" }]",
                  "      internalHealthCheck: { healthCheckCommand: [node, health.js], intervalSeconds: 20 }",
                  "      resources: { cpu: 0.5, memory: 1024 }", "      stopTimeout: 60",
                  "      scaling: { minInstances: 1, maxInstances: 4, scalingPolicy: { keepAvgCpuUtilizationUnder: 70, keepBacklogPerInstanceUnder: 50 } }"]
    for i in range(n_jobs):
        lines += [f"  job{i}:", "    type: scheduled-job", "    properties:",
                  "      packaging: { type: prebuilt-image, properties: { image: repo/app:1 } }",
                  "      command: [node, job.js]", f"      schedule: \"cron({i} 3 * * ? *)\"",
                  "      resources: { cpu: 0.25, memory: 512 }"]
    return "\n".join(lines) + "\n"


MUTATING = ("Create", "Put", "Register", "Update", "Set", "Tag", "Delete", "Modify", "Add", "POST", "PUT", "DELETE")


def one_worker(subnets, name, ec2):
    resources = "{ instanceTypes: [t3.medium, t3a.medium] }" if ec2 else "{ cpu: 2, memory: 4096 }"
    return "\n".join([f"stack: {name}", f"cluster: {name}", "network:", f"  subnets: [{', '.join(subnets)}]", "resources:",
                      "  worker:", "    type: worker-service", "    properties:",
                      "      packaging: { type: prebuilt-image, properties: { image: repo/app:1 } }",
                      "      command: [node, main.js]", f"      resources: {resources}",
                      "      scaling: { minInstances: 1, maxInstances: 4, scalingPolicy: { keepAvgCpuUtilizationUnder: 70 } }"]) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--deploy", default="target/release/bosun-deploy")
    ap.add_argument("--moto", default=os.path.abspath(".venv/bin/moto_server"))
    a = ap.parse_args()
    work = tempfile.mkdtemp()
    path = os.path.join(work, "bosun.yaml")
    with open(path, "w") as f:
        f.write(stack(["subnet-a", "subnet-b"]))
    print("== validate and render, 50 resources (hyperfine, median of 100) ==")
    out = os.path.join(work, "h.json")
    cmds = [f"{a.deploy} validate --stack {path}", f"{a.deploy} render --stack {path}"]
    env = dict(os.environ, AWS_ACCOUNT_ID="123456789012", AWS_REGION="us-east-1")
    subprocess.run(["hyperfine", "-N", "--warmup", "5", "--runs", "100", "--export-json", out, *cmds],
                   check=True, stdout=subprocess.DEVNULL, env=env)
    for r in json.load(open(out))["results"]:
        print(f"  {r['median'] * 1000:7.2f} ms  {r['command'].split()[1]}  (target <= 50 ms)")

    print("\n== AWS calls, 50 resources, against moto (recorder) ==")
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    base = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen([a.moto, "-H", "127.0.0.1", "-p", str(port)], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/moto-api/", timeout=1); break
            except OSError:
                time.sleep(0.1)
        py = os.path.join(os.path.dirname(a.moto), "python")
        subnets = subprocess.run([py, "-c", "import boto3,sys; e=boto3.client('ec2', endpoint_url=sys.argv[1], region_name='us-east-1',"
                                  " aws_access_key_id='x', aws_secret_access_key='y'); print(' '.join(s['SubnetId'] for s in e.describe_subnets()['Subnets'][:2]))", base],
                                 capture_output=True, text=True, check=True).stdout.split()
        # The secret the stack reads (apply checks it exists before changing anything).
        subprocess.run([py, "-c", "import boto3,sys; boto3.client('secretsmanager', endpoint_url=sys.argv[1], region_name='us-east-1',"
                        " aws_access_key_id='x', aws_secret_access_key='y').create_secret(Name='db', SecretString='{}')", base],
                       check=True, capture_output=True)
        with open(path, "w") as f:
            f.write(stack(subnets))
        aws_env = dict(os.environ, AWS_ENDPOINT_URL=base, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y")

        def count(label, stack_path=path):
            moto_recording.start(base)
            t0 = time.monotonic()
            r = subprocess.run([a.deploy, "apply", "--no-wait", "--stack", stack_path], env=aws_env, capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"apply failed: {r.stderr[-2000:]}")
            took = time.monotonic() - t0
            acts = moto_recording.actions(base)
            total = len(acts)
            mutating = sum(x.startswith(MUTATING) for x in acts)
            which = sorted({x for x in acts if x.startswith(MUTATING)})
            print(f"  {label:<18} {total:4d} calls, {mutating:4d} mutating, {took:5.1f} s" + (f"  ({', '.join(which)})" if "no-change" in label and which else ""))

        count("first apply")
        count("no-change apply")
        print("\n== one worker service: EC2 capacity beside Fargate, against moto (recorder) ==")
        print("  (moto keeps a service's capacityProviderStrategy but does not return it, so a no-change")
        print("   apply of a service with a strategy re-sends UpdateService here; AWS returns it)")
        for name, ec2 in (("fargate", False), ("ec2", True)):
            one = os.path.join(work, f"{name}.yaml")
            with open(one, "w") as f:
                f.write(one_worker(subnets, name, ec2))
            count(f"{name} first apply", one)
            count(f"{name} no-change", one)
        latency_section(a, base, py, work, subnets)
    finally:
        moto.terminate(); moto.wait(timeout=10)


class Latency:
    """An HTTP proxy in front of moto that holds every call for `delay` seconds and
    counts calls and the most in flight at once."""

    def __init__(self, upstream_port, delay):
        self.calls, self.in_flight, self.peak, self.lock = 0, 0, 0, threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_one(self):
                with outer.lock:
                    outer.calls += 1
                    outer.in_flight += 1
                    outer.peak = max(outer.peak, outer.in_flight)
                try:
                    n = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(n) if n else None
                    time.sleep(delay)
                    c = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                    hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "content-length")}
                    c.request(self.command, self.path, body=body, headers=hdrs)
                    r = c.getresponse()
                    data = r.read()
                    self.send_response(r.status)
                    for k, v in r.getheaders():
                        if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    with outer.lock:
                        outer.in_flight -= 1

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_one

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self):
        with self.lock:
            self.calls, self.peak = 0, 0


def latency_section(a, base, py, work, subnets, delay=0.05):
    proxy = Latency(int(base.rsplit(":", 1)[1]), delay)
    env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}", AWS_REGION="us-east-1",
               AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y")
    # The physical floor of a run: its calls, as many at once as the deployer lets
    # be in flight (32 by default; 16 to one service), each held `delay`.
    concurrency = 32

    def run(path, label, extra=None, rounds=1):
        # The median of `rounds` runs (on 2 cores, moto and this proxy share them).
        times = []
        for _ in range(rounds):
            proxy.reset()
            t0 = time.monotonic()
            r = subprocess.run([a.deploy, "apply", "--no-wait", "--stack", path], env=dict(env, **(extra or {})),
                               capture_output=True, text=True)
            times.append(time.monotonic() - t0)
            if r.returncode != 0:
                raise SystemExit(f"apply failed: {r.stderr[-2000:]}")
        took = sorted(times)[len(times) // 2]
        if rounds > 1:
            label = f"{label}, median of {rounds}"
        one_at_a_time = proxy.calls * delay
        floor = proxy.calls / concurrency * delay
        print(f"  {label:<42} {proxy.calls:5d} calls, at most {proxy.peak:3d} in flight, {took:5.2f} s"
              f"  (floor {floor:4.2f} s; one at a time: >= {one_at_a_time:6.2f} s, {one_at_a_time / took:4.1f}x faster)")
        return took

    for (queues, services, jobs, target) in ((10, 10, 5, 1.0), (100, 100, 50, 5.0)):
        n = queues + services + jobs
        print(f"\n== {n} resources ({queues} queues, {services} workers with scaling, {jobs} jobs), {int(delay * 1000)} ms added to every call ==")
        path = os.path.join(work, f"bosun{n}.yaml")
        with open(path, "w") as f:
            f.write(stack(subnets, n_queues=queues, n_services=services, n_jobs=jobs)
                    .replace("stack: bench\ncluster: bench", f"stack: b{n}\ncluster: b{n}"))
        run(path, "first apply")
        fast = run(path, f"no-change (target <= {target:.1f} s)", rounds=5)
        if n <= 25:
            slow = run(path, "no-change apply, concurrency 1", {"BOSUN_DEPLOY_CONCURRENCY": "1"})
            print(f"  no-change apply: {slow / fast:.1f}x faster than with BOSUN_DEPLOY_CONCURRENCY=1")
    proxy.server.shutdown()


if __name__ == "__main__":
    main()
