#!/usr/bin/env python3
"""Docker benchmarks, printed (never asserted):
 1. image sizes: the scratch example (busybox + bosun) and bosun's layer, full and lean;
 2. container start to worker start: `docker run --rm IMAGE /bin/true` with bosun as
    ENTRYPOINT against the same image with tini-static (hyperfine), ratio printed.
Usage: bench/docker.py   (after docker/build-static.sh)
"""
import json, os, shutil, subprocess, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(tag, entry_bin, entry_json, helper=None):
    ctx = tempfile.mkdtemp()
    os.makedirs(f"{ctx}/rootfs/bin")
    shutil.copy("/bin/busybox", f"{ctx}/rootfs/bin/busybox")
    for a in ["sh", "true", "sleep"]:
        os.symlink("busybox", f"{ctx}/rootfs/bin/{a}")
    shutil.copy(entry_bin, f"{ctx}/entry")
    extra = ""
    if helper:
        # bosun finds its AWS helper beside itself.
        shutil.copy(helper, f"{ctx}/bosun-aws")
        extra = "COPY bosun-aws /bosun-aws\n"
    with open(f"{ctx}/Dockerfile", "w") as f:
        f.write(f"FROM scratch\nCOPY rootfs/ /\nCOPY entry /entry\n{extra}ENTRYPOINT {json.dumps(entry_json)}\n")
    subprocess.run(["docker", "build", "--quiet", "-t", tag, ctx], check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(ctx)


def size(tag):
    out = subprocess.run(["docker", "image", "inspect", tag, "--format", "{{.Size}}"], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def main():
    bosun = f"{ROOT}/target/static/bosun"
    helper = f"{ROOT}/target/static/bosun-aws"
    images = {}
    print("== image and layer sizes (full: bosun + bosun-aws; lean: bosun alone) ==")
    for name, path, extra in [("full", bosun, helper), ("lean", bosun, None)]:
        if not os.path.exists(path) or (extra and not os.path.exists(extra)):
            print(f"  ({extra or path} missing: run docker/build-static.sh)")
            continue
        tag = f"bosun-bench-{name}"
        build(tag, path, ["/entry", "--listen", "off", "--"], extra)
        images[name] = tag
        layer = os.path.getsize(path) + (os.path.getsize(extra) if extra else 0)
        print(f"  bosun {name:<5} layer {layer / 1048576:6.2f} MiB, scratch example image {size(tag) / 1048576:6.2f} MiB"
              f"  (target: layer <= {'8' if name == 'full' else '2'} MiB)")
    tini = shutil.which("tini-static")
    if tini:
        build("bosun-bench-tini", tini, ["/entry", "--"])
        images["tini-static"] = "bosun-bench-tini"
        print(f"  tini-static layer {os.path.getsize(tini) / 1048576:6.2f} MiB")
    print("\n== docker run --rm IMAGE /bin/true (hyperfine, median of 30) ==")
    cmds = {n: f"docker run --rm {t} /bin/true" for n, t in images.items()}
    out = tempfile.mktemp(suffix=".json")
    subprocess.run(["hyperfine", "-N", "--warmup", "3", "--runs", "30", "--export-json", out, *cmds.values()],
                   check=True, stdout=subprocess.DEVNULL)
    med = {r["command"]: r["median"] * 1000 for r in json.load(open(out))["results"]}
    for n, c in cmds.items():
        print(f"  {n:<12} {med[c]:8.1f} ms")
    if "tini-static" in cmds:
        for n in ("full", "lean"):
            if n in cmds:
                print(f"  ratio bosun {n}/tini-static: {med[cmds[n]] / med[cmds['tini-static']]:.3f}x")
    for t in images.values():
        subprocess.run(["docker", "rmi", "-f", t], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
