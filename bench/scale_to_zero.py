#!/usr/bin/env python3
"""Replay message-arrival traces against the scaling a stack renders, with AWS's
documented semantics, and print per trace and policy: seconds from the first message
to the first running task, task-minutes used, how long messages waited, and how many
times a scale-in stopped a task while it held a message (must be 0 for bosun).

The policies compared, on the same queue worker (a task takes one message at a time):
  bosun    what `bosun-deploy render` gives for the stack below: minInstances 0, the
           wake alarm and step policy, the idle alarm and step policy, target tracking
           on BacklogPerTask; the worker holds ECS task protection while it works
           (`bosun protect` / PUT /protection).
  bosun-np the same policy with a worker that does not protect itself: the wake and
           idle policies alone must not stop a task holding a message (target
           tracking's scale-in, which knows nothing of messages, may: that is what
           the protection is for).
  copilot  what AWS Copilot's worker-service template renders (autoscaling.yml):
           min 1 task (its backlog calculator divides by running tasks), target
           tracking on BacklogPerTask, scale-in cooldown 120 s, scale-out 60 s; no
           task protection.

The semantics modelled (AWS documentation):
  - SQS publishes ApproximateNumberOfMessagesVisible / NotVisible as 1-minute
    datapoints; a datapoint is readable about a minute after its minute ends.
  - An alarm is evaluated every minute on its last EvaluationPeriods datapoints
    (DatapointsToAlarm of them breaching), TreatMissingData for gaps; an alarm with an
    Application Auto Scaling action invokes it at every evaluation while in ALARM.
  - A step policy sets the desired count from the step the alarm's metric falls in:
    to the step's adjustment with ExactCapacity, up by it with ChangeInCapacity;
    during its cooldown, only a larger capacity goes through.
  - Target tracking: out when the metric is above target for 3 datapoints in a row,
    to ceil(tasks * metric / target); in when below 90% of target for 15 in a row,
    down to the target's minimum, 0 included (target tracking scales to zero on real
    zero datapoints), unless the policy disables scale-in (DisableScaleIn: bosun's,
    when the minimum is 0, so only the idle policy, which looks at messages in
    flight, takes it to zero); cooldowns as rendered. BacklogPerTask is published by
    the running tasks, so it has no data while none runs.
  - A task starts TASK_START seconds after the desired count asks for it. On scale-in
    ECS stops tasks it picks among the unprotected ones; a stopped task that held a
    message gives it back after the visibility timeout.

Usage: python3 bench/scale_to_zero.py [--deploy target/debug/bosun-deploy]
"""
import argparse
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile

TASK_START = 60  # seconds from desired count up to a running task (Fargate, typical)
VISIBILITY = 300  # the queue's visibility timeout
HORIZON_AFTER = 3 * 3600  # seconds simulated after the last arrival

STACK = """stack: sim
network: {{ subnets: [subnet-1] }}
resources:
  jobs:
    type: sqs-queue
    properties: {{ visibilityTimeoutSeconds: {vis}, deadLetterQueue: {{ targetQueue: dead, maxReceiveCount: 3 }} }}
  dead:
    type: sqs-queue
  worker:
    type: worker-service
    properties:
      packaging: {{ type: prebuilt-image, properties: {{ image: repo/app:1 }} }}
      command: [run]
      connectTo: [jobs]
      scaling:
        minInstances: 0
        maxInstances: {max}
        idleMinutes: {idle}
        scalingPolicy: {{ keepBacklogPerInstanceUnder: {target} }}
"""


# --- metric math: the subset the rendered alarms use -------------------------------

def evaluate(expr, values):
    """Evaluate a CloudWatch metric-math expression over one datapoint's values
    (`None` is a missing datapoint: FILL-less math on it gives None)."""
    tokens = re.findall(r"\d+\.?\d*|[A-Za-z_][A-Za-z0-9_]*|==|!=|<=|>=|[-+*/(),<>]", expr)
    pos = [0]

    def peek():
        return tokens[pos[0]] if pos[0] < len(tokens) else None

    def take(t=None):
        tok = tokens[pos[0]]
        if t is not None and tok != t:
            raise ValueError(f"expected {t!r}, found {tok!r} in {expr!r}")
        pos[0] += 1
        return tok

    def atom():
        tok = take()
        if tok == "(":
            v = comparison()
            take(")")
            return v
        if tok == "IF":
            take("(")
            cond = comparison()
            take(",")
            a = comparison()
            take(",")
            b = comparison()
            take(")")
            if cond is None:
                return None
            return a if cond else b
        if re.match(r"\d", tok):
            return float(tok)
        return values.get(tok)

    def term():
        v = atom()
        while peek() in ("*", "/"):
            op, w = take(), atom()
            v = None if v is None or w is None else (v * w if op == "*" else (v / w if w else None))
        return v

    def total():
        v = term()
        while peek() in ("+", "-"):
            op, w = take(), term()
            v = None if v is None or w is None else (v + w if op == "+" else v - w)
        return v

    def comparison():
        v = total()
        if peek() in ("==", "!=", "<", ">", "<=", ">="):
            op, w = take(), total()
            if v is None or w is None:
                return None
            return float({"==": v == w, "!=": v != w, "<": v < w, ">": v > w, "<=": v <= w, ">=": v >= w}[op])
        return v

    out = comparison()
    if peek() is not None:
        raise ValueError(f"unexpected {peek()!r} in {expr!r}")
    return out


# --- the world ---------------------------------------------------------------------

class World:
    def __init__(self, trace, seed=1):
        self.rng = random.Random(seed)
        self.arrivals = sorted(trace)  # (time, work seconds)
        self.queue = []  # visible messages: [arrived, work, visible_from]
        self.tasks = []  # dicts: ready_at, msg (or None), done_at, protected
        self.desired = 0
        self.minute_vis = {}  # minute -> max visible
        self.minute_inflight = {}
        self.minute_backlog = {}  # minute -> BacklogPerTask average (None: no task)
        self.waits = []
        self.killed_holding = 0
        self.killed_by = {}  # what asked for the scale-in -> tasks stopped holding a message
        self.task_seconds = 0
        self.first_task_at = None
        self.inflight = []  # messages taken by a task, or given back after a kill

    def running(self):
        return [t for t in self.tasks if t["ready_at"] is not None and t["ready_at"] <= self.now]

    def set_desired(self, n, protect, cause="service"):
        self.desired = n
        have = len(self.tasks)
        if n > have:
            for _ in range(n - have):
                self.tasks.append({"ready_at": self.now + TASK_START, "msg": None, "done_at": 0})
        elif n < have:
            # ECS picks among unprotected tasks (pending ones first).
            pending = [t for t in self.tasks if t["ready_at"] > self.now]
            running = [t for t in self.tasks if t["ready_at"] <= self.now]
            self.rng.shuffle(running)
            candidates = pending + [t for t in running if not (protect and t["msg"] is not None)]
            for t in candidates[: have - n]:
                if t["msg"] is not None:
                    self.killed_holding += 1
                    self.killed_by[cause] = self.killed_by.get(cause, 0) + 1
                    m = t["msg"]
                    self.queue.append([m[0], m[1], self.now + VISIBILITY])
                self.tasks.remove(t)

    def step(self, protect):
        """One second."""
        while self.arrivals and self.arrivals[0][0] <= self.now:
            at, work = self.arrivals.pop(0)
            self.queue.append([at, work, at])
        # A protected task whose count was cut stops once its message is done.
        for t in self.running():
            if t["msg"] is not None and t["done_at"] <= self.now:
                t["msg"] = None
            if t["msg"] is None:
                ready = [m for m in self.queue if m[2] <= self.now]
                if ready:
                    m = ready[0]
                    self.queue.remove(m)
                    self.waits.append(self.now - m[0])
                    t["msg"] = m
                    t["done_at"] = self.now + m[1]
        if len(self.tasks) > self.desired:
            self.set_desired(self.desired, protect)
        run = self.running()
        if run and self.first_task_at is None:
            self.first_task_at = self.now
        self.task_seconds += len(run)
        minute = self.now // 60
        vis = sum(1 for m in self.queue if m[2] <= self.now)
        inflight = sum(1 for t in run if t["msg"] is not None) + sum(1 for m in self.queue if m[2] > self.now)
        self.minute_vis[minute] = max(self.minute_vis.get(minute, 0), vis)
        self.minute_inflight[minute] = max(self.minute_inflight.get(minute, 0), inflight)
        if run:
            acc = self.minute_backlog.setdefault(minute, [])
            acc.append(vis / len(run))

    def datapoint(self, metric, minute):
        """A 1-minute datapoint as CloudWatch has it a minute after the minute ends."""
        if minute * 60 + 120 > self.now:
            return None
        if metric == "ApproximateNumberOfMessagesVisible":
            return float(self.minute_vis.get(minute, 0))
        if metric == "ApproximateNumberOfMessagesNotVisible":
            return float(self.minute_inflight.get(minute, 0))
        if metric == "BacklogPerTask":
            xs = self.minute_backlog.get(minute)
            return sum(xs) / len(xs) if xs else None
        raise ValueError(metric)


# --- the policies ------------------------------------------------------------------

class Alarm:
    def __init__(self, spec):
        self.spec = spec
        self.state = "INSUFFICIENT_DATA"

    def value(self, world, minute):
        values = {}
        for q in self.spec["Metrics"]:
            if "MetricStat" in q:
                values[q["Id"]] = world.datapoint(q["MetricStat"]["Metric"]["MetricName"], minute)
        for q in self.spec["Metrics"]:
            if q.get("Expression"):
                values[q["Id"]] = evaluate(q["Expression"], values)
        ret = [q for q in self.spec["Metrics"] if q.get("ReturnData", True)][0]
        return values[ret["Id"]]

    def breaches(self, v):
        t = self.spec["Threshold"]
        return {
            "GreaterThanOrEqualToThreshold": v >= t,
            "GreaterThanThreshold": v > t,
            "LessThanThreshold": v < t,
            "LessThanOrEqualToThreshold": v <= t,
        }[self.spec["ComparisonOperator"]]

    def evaluate(self, world):
        latest = world.now // 60 - 2  # the newest readable minute
        n = self.spec["EvaluationPeriods"]
        pts = [self.value(world, latest - i) for i in range(n)]
        missing = self.spec.get("TreatMissingData", "missing")
        marks = []
        for v in pts:
            if v is None:
                marks.append({"breaching": True, "notBreaching": False}.get(missing))
            else:
                marks.append(self.breaches(v))
        if sum(1 for m in marks if m) >= self.spec["DatapointsToAlarm"]:
            self.state = "ALARM"
        elif all(m is not None for m in marks) or missing == "notBreaching":
            self.state = "OK"
        return pts[0]


class StepPolicy:
    def __init__(self, spec):
        self.name = spec["PolicyName"]
        self.cfg = spec["StepScalingPolicyConfiguration"]
        self.last = -10**9
        self.last_set = None

    def invoke(self, world, alarm, value, protect, lo, hi):
        if value is None:
            return
        d = value - alarm.spec["Threshold"]
        for s in self.cfg["StepAdjustments"]:
            low = s.get("MetricIntervalLowerBound", -math.inf)
            up = s.get("MetricIntervalUpperBound", math.inf)
            if low <= d < up or (d == up and up <= 0):
                adj = s["ScalingAdjustment"]
                if self.cfg.get("AdjustmentType") == "ChangeInCapacity":
                    adj += world.desired
                n = max(lo, min(hi, adj))
                in_cooldown = world.now - self.last < self.cfg["Cooldown"]
                if n == world.desired or (in_cooldown and n <= world.desired):
                    return
                self.last = world.now
                world.set_desired(n, protect, self.name)
                return


class TargetTracking:
    def __init__(self, target, out_cd, in_cd, floor=0, disable_in=False):
        self.target, self.out_cd, self.in_cd, self.floor = target, out_cd, in_cd, floor
        self.disable_in = disable_in
        self.last_out = self.last_in = -10**9

    def evaluate(self, world, protect, lo, hi):
        latest = world.now // 60 - 2
        high = [world.datapoint("BacklogPerTask", latest - i) for i in range(3)]
        low = [world.datapoint("BacklogPerTask", latest - i) for i in range(15)]
        cur = max(world.desired, 1)
        if all(v is not None and v > self.target for v in high):
            n = min(hi, math.ceil(cur * high[0] / self.target))
            if n > world.desired and world.now - self.last_out >= self.out_cd:
                self.last_out = world.now
                world.set_desired(n, protect, "target tracking")
        elif not self.disable_in and all(v is not None and v < 0.9 * self.target for v in low) and world.desired > max(lo, self.floor):
            if world.now - self.last_in >= self.in_cd and world.now - self.last_out >= self.out_cd:
                n = max(lo, self.floor, math.ceil(cur * low[0] / self.target))
                if n < world.desired:
                    self.last_in = world.now
                    world.set_desired(n, protect, "target tracking")


def bosun_policy(rendered):
    target = rendered["scalableTargets"][0]
    pols = {p["PolicyName"]: p for p in rendered["scalingPolicies"]}
    alarms = []
    for a in rendered["alarms"]:
        name = a["AlarmActions"][0].rsplit("policyName/", 1)[1]
        alarms.append((Alarm(a), StepPolicy(pols[name])))
    tracking = [
        TargetTracking(
            p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"],
            p["TargetTrackingScalingPolicyConfiguration"]["ScaleOutCooldown"],
            p["TargetTrackingScalingPolicyConfiguration"]["ScaleInCooldown"],
            disable_in=p["TargetTrackingScalingPolicyConfiguration"].get("DisableScaleIn", False),
        )
        for p in rendered["scalingPolicies"]
        if p["PolicyType"] == "TargetTrackingScaling"
        and p["TargetTrackingScalingPolicyConfiguration"].get("CustomizedMetricSpecification", {}).get("MetricName") == "BacklogPerTask"
    ]
    return {
        "min": target["MinCapacity"],
        "max": target["MaxCapacity"],
        "alarms": alarms,
        "tracking": tracking,
        "protect": True,
    }


def copilot_policy(target_value, max_tasks):
    return {
        "min": 1,
        "max": max_tasks,
        "alarms": [],
        "tracking": [TargetTracking(target_value, 60, 120, floor=1)],
        "protect": False,
    }


def simulate(trace, policy):
    w = World(trace)
    w.now = 0
    w.set_desired(policy["min"], policy["protect"])
    for t in w.tasks:  # the service was deployed earlier: its tasks run already
        t["ready_at"] = 0
    end = max(a for a, _ in trace) + HORIZON_AFTER
    first_msg = min(a for a, _ in trace)
    first_task = None
    while w.now < end:
        w.step(policy["protect"])
        if first_task is None and w.now >= first_msg and w.running():
            first_task = w.now - first_msg
        if w.now % 60 == 0:
            for alarm, step in policy["alarms"]:
                v = alarm.evaluate(w)
                if alarm.state == "ALARM":
                    step.invoke(w, alarm, v, policy["protect"], policy["min"], policy["max"])
            for tt in policy["tracking"]:
                tt.evaluate(w, policy["protect"], policy["min"], policy["max"])
        w.now += 1
    waits = sorted(w.waits)
    return {
        "first_task_s": first_task,
        "task_minutes": w.task_seconds / 60,
        "messages": len(waits),
        "wait_p50_s": waits[len(waits) // 2] if waits else None,
        "wait_max_s": waits[-1] if waits else None,
        "waited_over_5min": sum(1 for x in waits if x > 300),
        "killed_holding": w.killed_holding,
        "killed_by": w.killed_by,
        "left_in_queue": len(w.queue) + len(w.arrivals),
    }


def traces():
    hour = 3600
    return {
        "burst: 600 msgs at 10 min, 20 s each": [(600, 20)] * 600,
        "trickle: 1 msg an hour for 24 h, 10 s": [(i * hour + 300, 10) for i in range(24)],
        "long job: 1 msg of 2 h, 40 of 60 s at 30 min": [(300, 2 * hour)] + [(1800, 60)] * 40,
        "steady: 1 msg/10 s for 2 h, 5 s each": [(i * 10, 5) for i in range(720)],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--deploy", default=os.path.join(here, "..", "target", "debug", "bosun-deploy"))
    ap.add_argument("--target", type=float, default=10, help="messages per task (both policies)")
    ap.add_argument("--max", type=int, default=10)
    ap.add_argument("--idle", type=int, default=15)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bosun.yaml")
        with open(path, "w") as f:
            f.write(STACK.format(vis=VISIBILITY, max=args.max, idle=args.idle, target=args.target))
        out = subprocess.run([args.deploy, "render", "--stack", path], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            sys.exit(f"render failed: {out.stderr}")
        rendered = json.loads(out.stdout)

    cols = ["first_task_s", "task_minutes", "messages", "wait_p50_s", "wait_max_s", "waited_over_5min", "killed_holding", "left_in_queue"]
    print(f"target {args.target} msgs/task, max {args.max} tasks, idle {args.idle} min, task start {TASK_START} s, visibility {VISIBILITY} s")
    bad = 0
    for name, trace in traces().items():
        print(f"\n{name}")
        print("  {:<9} ".format("policy") + " ".join(f"{c:>16}" for c in cols))
        rows = {}
        for pname, make in [
            ("bosun", lambda: bosun_policy(rendered)),
            ("bosun-np", lambda: dict(bosun_policy(rendered), protect=False)),
            ("copilot", lambda: copilot_policy(args.target, args.max)),
        ]:
            r = simulate(trace, make())
            rows[pname] = r
            cells = []
            for c in cols:
                v = r[c]
                cells.append(f"{v:>16.1f}" if isinstance(v, float) else f"{str(v):>16}")
            print(f"  {pname:<9} " + " ".join(cells))
        b, c = rows["bosun"], rows["copilot"]
        print(f"  bosun/copilot task-minutes {b['task_minutes'] / c['task_minutes']:.2f}x")
        np = rows["bosun-np"]
        for pname, r in rows.items():
            if r["killed_by"]:
                print(f"  {pname}: tasks stopped holding a message, by what asked: {r['killed_by']}")
        # Protected, nothing may be lost; unprotected, the alarms' own scale-in (the
        # idle policy) still must not stop a task that holds a message: only target
        # tracking, which knows nothing of messages, may.
        idle_kills = sum(v for k, v in np["killed_by"].items() if k.endswith("-idle") or k.endswith("-wake"))
        if b["killed_holding"] or b["left_in_queue"] or np["left_in_queue"] or idle_kills:
            bad += 1
            print("  !! bosun's policy stopped a task holding a message, or left messages behind")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
