#!/usr/bin/env python3
"""bosun-deploy benchmarks, printed (never asserted):
 1. validate and render of a 50-resource stack (hyperfine, median; target <= 50 ms);
 2. the AWS calls of a first apply and of a no-change apply (moto recorder).
Usage: bench/deploy.py [--deploy PATH]
"""
import argparse, json, os, socket, subprocess, tempfile, time, urllib.request

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
        with open(path, "w") as f:
            f.write(stack(subnets))
        aws_env = dict(os.environ, AWS_ENDPOINT_URL=base, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y")

        def count(label):
            moto_recording.start(base)
            t0 = time.monotonic()
            r = subprocess.run([a.deploy, "apply", "--no-wait", "--stack", path], env=aws_env, capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"apply failed: {r.stderr[-2000:]}")
            took = time.monotonic() - t0
            acts = moto_recording.actions(base)
            total = len(acts)
            mutating = sum(x.startswith(("Create", "Put", "Register", "Update", "Set", "Tag", "Delete", "POST", "PUT", "DELETE")) for x in acts)
            print(f"  {label:<18} {total:4d} calls, {mutating:4d} mutating, {took:5.1f} s")

        count("first apply")
        count("no-change apply")
    finally:
        moto.terminate(); moto.wait(timeout=10)


if __name__ == "__main__":
    main()
