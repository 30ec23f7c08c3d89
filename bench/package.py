#!/usr/bin/env python3
"""Time and bytes of apply with a built image (custom-dockerfile): the first apply,
a no-change re-apply (no rebuild of unchanged layers, nothing pushed) and a one-line
change (one layer pushed). The registry is Debian's docker-registry on loopback, AWS
is moto_server; bytes are what the registry stores after each apply, layers are
docker push's "Pushed" lines.

Usage: python3 bench/package.py [--bosun target/static/bosun] [--deploy target/debug/bosun-deploy]
Needs: bash .ci/setup (moto, docker-registry), a Docker engine, a static bosun
(bash docker/build-static.sh --lean).
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, what):
    for _ in range(300):
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status < 500:
                    return
        except Exception:
            time.sleep(0.1)
    sys.exit(f"{what} did not answer at {url}")


def du(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(d, f))
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bosun", default=os.path.join(ROOT, "target", "static", "bosun"))
    ap.add_argument("--deploy", default=os.path.join(ROOT, "target", "debug", "bosun-deploy"))
    ap.add_argument("--app-mib", type=int, default=20, help="size of the app's dependency layer")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="bosun-bench-package-")
    procs = []
    try:
        reg_port, moto_port = free_port(), free_port()
        data = os.path.join(work, "registry")
        cfg = os.path.join(work, "registry.yml")
        with open(cfg, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {data}\nhttp:\n  addr: 127.0.0.1:{reg_port}\n")
        procs.append(subprocess.Popen(["docker-registry", "serve", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        moto = os.path.join(ROOT, ".venv", "bin", "moto_server")
        procs.append(subprocess.Popen([moto, "-p", str(moto_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work))
        wait_http(f"http://127.0.0.1:{reg_port}/v2/", "the registry")
        wait_http(f"http://127.0.0.1:{moto_port}/moto-api/", "moto")
        env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{moto_port}", AWS_ACCESS_KEY_ID="x",
                   AWS_SECRET_ACCESS_KEY="y", AWS_REGION="us-east-1")
        subnet = subprocess.run(
            [os.path.join(ROOT, ".venv", "bin", "python"), "-c",
             "import boto3,sys; print(boto3.client('ec2', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y').describe_subnets()['Subnets'][0]['SubnetId'])",
             env["AWS_ENDPOINT_URL"]], capture_output=True, text=True, check=True).stdout.strip()

        app = os.path.join(work, "app")
        os.makedirs(app)
        shutil.copy("/bin/busybox", os.path.join(app, "busybox"))
        with open(os.path.join(app, "deps.bin"), "wb") as f:
            f.write(os.urandom(args.app_mib << 20))
        with open(os.path.join(app, "main.sh"), "w") as f:
            f.write("echo version 1\n")
        with open(os.path.join(app, "Dockerfile"), "w") as f:
            f.write("FROM scratch\nCOPY busybox /bin/busybox\nCOPY deps.bin /deps.bin\nCOPY main.sh /main.sh\n"
                    "CMD [\"/bin/busybox\", \"sh\", \"/main.sh\"]\n")
        stack = os.path.join(work, "bosun.yaml")
        name = f"bench{os.getpid()}"
        with open(stack, "w") as f:
            f.write(f"stack: {name}\nregistry: 127.0.0.1:{reg_port}/bench\nnetwork: {{ subnets: [{subnet}] }}\n"
                    "resources:\n  worker:\n    type: worker-service\n    properties:\n"
                    "      packaging: { type: custom-dockerfile, properties: { buildContextPath: app } }\n")

        def apply(label):
            before = du(data)
            t0 = time.monotonic()
            out = subprocess.run([args.deploy, "apply", "--no-wait", "--stack", stack, "--bosun", args.bosun],
                                 capture_output=True, text=True, env=env, timeout=900)
            dt = time.monotonic() - t0
            if out.returncode != 0:
                sys.exit(f"{label}: apply failed:\n{out.stderr}")
            pushed = out.stderr.count(": Pushed")
            changes = [l for l in out.stdout.splitlines() if l.strip().startswith(("+", "~", "-"))]
            print(f"  {label:<34} {dt:7.2f} s  {(du(data) - before) / 1024:10.1f} KiB stored  "
                  f"{pushed} layer(s) pushed  {len(changes)} AWS change(s)")
            return dt

        print(f"apply of one worker built from a Dockerfile ({args.app_mib} MiB dependency layer), registry on loopback:")
        apply("first apply (build, push)")
        apply("no change")
        with open(os.path.join(app, "main.sh"), "w") as f:
            f.write("echo version 2\n")
        apply("one-line change")
        apply("no change again")
    finally:
        for p in procs:
            p.kill()
            p.wait()
        subprocess.run(["sh", "-c", f"docker images --format '{{{{.Repository}}}}:{{{{.Tag}}}}' | grep 'bench{os.getpid()}' | xargs -r docker rmi -f"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
