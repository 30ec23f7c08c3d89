#!/usr/bin/env python3
"""Check requests bosun-deploy sent against the real AWS API models (botocore's), and
the IAM policies in them with an IAM policy linter (parliament).

Input: a JSON-lines file, one recorded request per line:
  {"protocol": "json"|"query"|"rest", "service": ..., "action": ..., "method": ...,
   "path": ..., "body": ...}
Each request is turned back into the operation's parameters (JSON protocols: the body;
query protocols: the form, read along the input shape; REST: the URI labels, the query
string and the body) and validated with botocore's ParamValidator, then against what
ParamValidator leaves out and AWS enforces: maximum lengths, patterns and enums of
strings, maximum sizes of lists, maximum values of numbers. Prints one line per
problem and exits 1 when there is any; prints what it checked. Each IAM policy is also
checked against the Service Authorization Reference parliament ships: every action
exists, and every ARN it is granted on is of a resource type that action is authorized
on (a statement that names the wrong kind of ARN grants nothing on real AWS).
"""
import json
import sys
import urllib.parse
import xml.etree.ElementTree as ET

import regex  # the models' patterns are Java's: \p{L} and the like

import botocore.session
from botocore.validate import ParamValidator

SERVICES = ["ecs", "logs", "application-autoscaling", "sqs", "secretsmanager", "iam",
            "sts", "ec2", "cloudwatch", "scheduler", "autoscaling", "ssm", "ecr", "sns",
            "servicediscovery", "s3", "firehose"]

session = botocore.session.get_session()
models = {name: session.get_service_model(name) for name in SERVICES}
by_target = {m.metadata.get("targetPrefix"): m for m in models.values() if m.metadata.get("targetPrefix")}
by_signing = {}
for m in models.values():
    by_signing.setdefault(m.metadata.get("signingName") or m.endpoint_prefix, []).append(m)


def scalar(shape, text):
    t = shape.type_name
    if t in ("integer", "long"):
        return int(text)
    if t in ("double", "float"):
        return float(text)
    if t == "boolean":
        return text == "true"
    return text


def from_query(shape, form, prefix, ec2):
    """Rebuild the parameters of `shape` from flattened query keys under `prefix`."""
    t = shape.type_name
    if t == "structure":
        out = {}
        for name, member in shape.members.items():
            if ec2:
                key = member.serialization.get("queryName") or (member.serialization.get("name") or name)
                key = key[0].upper() + key[1:]
            else:
                key = member.serialization.get("name") or name
            p = f"{prefix}.{key}" if prefix else key
            v = from_query(member, form, p, ec2)
            if v is not None:
                out[name] = v
        return out or None
    if t == "list":
        member = shape.member
        items = []
        flat = ec2 or shape.serialization.get("flattened")
        i = 1
        while True:
            p = f"{prefix}.{i}" if flat else f"{prefix}.member.{i}"
            v = from_query(member, form, p, ec2)
            if v is None:
                break
            items.append(v)
            i += 1
        if not items and prefix in form and form[prefix] == "":
            return []
        return items or None
    if t == "map":
        out = {}
        i = 1
        while f"{prefix}.entry.{i}.key" in form:
            out[form[f"{prefix}.entry.{i}.key"]] = from_query(shape.value, form, f"{prefix}.entry.{i}.value", ec2)
            i += 1
        return out or None
    if prefix in form:
        return scalar(shape, form[prefix])
    return None


def limits(shape, value, path, problems):
    """What the model says of `value` beyond ParamValidator's checks (which are
    minimums, types and required members): max lengths, patterns, enums, list sizes,
    maximum numbers."""
    if value is None:
        return
    t = shape.type_name
    meta = shape.metadata
    if t == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                limits(member, value[name], f"{path}.{name}", problems)
    elif t == "list" and isinstance(value, list):
        if meta.get("max") is not None and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} items, at most {meta['max']}")
        for i, v in enumerate(value):
            limits(shape.member, v, f"{path}[{i}]", problems)
    elif t == "map" and isinstance(value, dict):
        if meta.get("max") is not None and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} entries, at most {meta['max']}")
        for k, v in value.items():
            limits(shape.key, k, f"{path} key {k!r}", problems)
            limits(shape.value, v, f"{path}[{k}]", problems)
    elif t == "string" and isinstance(value, str):
        if meta.get("max") is not None and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} characters, at most {meta['max']}")
        pattern = meta.get("pattern")
        if pattern:
            try:
                ok = regex.fullmatch(pattern, value, flags=regex.DOTALL) is not None
            except regex.error:
                ok = True  # a pattern this engine cannot read is not the request's fault
            if not ok:
                problems.append(f"{path}: {value[:80]!r} does not match {pattern}")
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
    elif t in ("integer", "long", "double", "float") and isinstance(value, (int, float)):
        if meta.get("max") is not None and value > meta["max"]:
            problems.append(f"{path}: {value} is more than {meta['max']}")


def from_xml(shape, el):
    """The value of `shape` that XML element `el` holds (rest-xml)."""
    t = shape.type_name
    if t == "structure":
        out = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name") or name
            if member.type_name == "list" and member.serialization.get("flattened"):
                items = [from_xml(member.member, c) for c in el if c.tag.split("}")[-1] == (member.member.serialization.get("name") or key)]
                if items:
                    out[name] = items
                continue
            child = next((c for c in el if c.tag.split("}")[-1] == key), None)
            if child is not None:
                out[name] = from_xml(member, child)
        return out
    if t == "list":
        item = shape.member.serialization.get("name") or "member"
        return [from_xml(shape.member, c) for c in el if c.tag.split("}")[-1] == item]
    return scalar(shape, el.text or "")


def from_rest(model, req):
    """The operation and its parameters of a REST request: the one whose method, path
    and query subresources match (the most specific), its URI labels, query string and
    body (JSON, or rest-xml's payload)."""
    method = req["method"]
    url = urllib.parse.urlsplit(req["path"])
    segs = [urllib.parse.unquote(s) for s in url.path.strip("/").split("/")]
    if segs == [""]:
        segs = []
    query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
    best = None
    for name in model.operation_names:
        op = model.operation_model(name)
        http = op.http
        if http["method"] != method:
            continue
        if "x-id" in query and query["x-id"] != name:
            continue
        # Of two operations on one path (PutBucketLifecycle and its successor
        # PutBucketLifecycleConfiguration), the SDK sends the current one.
        if op.deprecated:
            continue
        path, _, wants = http["requestUri"].partition("?")
        pattern = [p for p in path.strip("/").split("/") if p]
        greedy = pattern and pattern[-1].endswith("+}")
        if len(pattern) != len(segs) and not (greedy and len(segs) >= len(pattern)):
            continue
        keys = [w.split("=")[0] for w in wants.split("&") if w]
        if any(k not in query for k in keys):
            continue
        labels = {}
        ok = True
        for i, p in enumerate(pattern):
            if p.startswith("{"):
                labels[p.strip("{}+")] = "/".join(segs[i:]) if p.endswith("+}") else segs[i]
            elif p != segs[i]:
                ok = False
                break
        if ok and (best is None or len(keys) > best[2]):
            best = (op, labels, len(keys))
    if best is None:
        return None, None
    op, labels, _ = best
    shape = op.input_shape
    params = {}
    if req["body"] and model.protocol == "rest-xml":
        payload = shape.serialization.get("payload") if shape else None
        if payload:
            params[payload] = from_xml(shape.members[payload], ET.fromstring(req["body"]))
    elif req["body"]:
        params = json.loads(req["body"])
    for mname, member in (shape.members.items() if shape else []):
        loc = member.serialization.get("location")
        lname = member.serialization.get("name") or mname
        if loc == "uri" and lname in labels:
            params[mname] = labels[lname]
        elif loc == "querystring" and lname in query:
            params[mname] = scalar(member, query[lname])
    return op, params


_sar = None


def sar():
    """The Service Authorization Reference, as parliament ships it: prefix → (actions,
    resource type → ARN template)."""
    global _sar
    if _sar is None:
        import os
        import parliament
        path = os.path.join(os.path.dirname(parliament.__file__), "iam_definition.json")
        _sar = {}
        for svc in json.load(open(path)):
            actions = {p["privilege"].lower(): p for p in svc["privileges"]}
            arns = {r["resource"]: r["arn"] for r in svc["resources"]}
            keys = {r["resource"]: r.get("condition_keys", []) for r in svc["resources"]}
            _sar.setdefault(svc["prefix"], ({}, {}, {}))
            _sar[svc["prefix"]][0].update(actions)
            _sar[svc["prefix"]][1].update(arns)
            _sar[svc["prefix"]][2].update(keys)
    return _sar


def condition_keys(policy):
    """Each condition key of an Allow statement against the Service Authorization
    Reference: a key the action (or its resource type) does not list is never
    present in the request, so the condition fails and the grant is no grant."""
    found = []
    for st in policy.get("Statement", []):
        actions = st.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        for test, pairs in st.get("Condition", {}).items():
            for key in pairs:
                for action in actions:
                    prefix, _, name = action.partition(":")
                    svc = sar().get(prefix)
                    priv = svc and svc[0].get(name.lower())
                    if not priv:
                        continue
                    allowed = set()
                    for rt in priv["resource_types"]:
                        allowed.update(rt["condition_keys"])
                        allowed.update(svc[2].get(rt["resource_type"].rstrip("*"), []))
                    fits = any(
                        a == key or (a.endswith("${TagKey}") and key.startswith(a[: -len("${TagKey}")]))
                        for a in allowed
                    )
                    if not fits:
                        found.append(f"{action}: condition key {key} is not one it takes ({sorted(allowed)})")
    return found


def template_regex(template):
    """An ARN template of the reference (`arn:${Partition}:sqs:${Region}:${Account}:${QueueName}`)
    as a pattern an ARN of a policy (with `*` and `?` wildcards) must fit."""
    out, i = "", 0
    for m in regex.finditer(r"\$\{[^}]+\}", template):
        fixed = m.group(0) in ("${Partition}", "${Region}", "${Account}")
        out += regex.escape(template[i:m.start()]) + ("[^:]*" if fixed else ".+")
        i = m.end()
    return "^" + out + regex.escape(template[i:]) + "$"


def resource_formats(policy):
    """Each Allow statement's resources, action by action, against the Service
    Authorization Reference: an ARN must be of a resource type the action is
    authorized on (a statement naming a queue's ARN for an ECS action grants nothing);
    an unknown action is named."""
    found = []
    for st in policy.get("Statement", []):
        actions = st.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = st.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        for action in actions:
            prefix, _, name = action.partition(":")
            if "*" in name:
                continue
            svc = sar().get(prefix)
            priv = svc and svc[0].get(name.lower())
            if not priv:
                found.append(f"{action}: no such action in the Service Authorization Reference")
                continue
            types = [t["resource_type"].rstrip("*") for t in priv["resource_types"] if t["resource_type"]]
            for r in resources:
                if r == "*":
                    continue
                if not types:
                    found.append(f"{action} takes no resource type, but is granted on {r} (it needs \"*\")")
                    continue
                # A wildcard may stand for any part of the ARN: what comes before the
                # first one must be able to begin an ARN of the type.
                head, wild, _ = r.partition("*")
                if not any(regex.fullmatch(template_regex(svc[1].get(t, "")), head, partial=bool(wild)) for t in types):
                    found.append(f"{action} on {r}: not an ARN of its resource types {types}")
    return found


def cluster_scoped_star(finding, policy):
    # ecs:ListTasks is authorized on container instances, which a Fargate task has
    # none of: AWS's ECS policy examples (and the CDK) grant it on "*" with the
    # ecs:cluster condition, which parliament's RESOURCE_STAR does not look at.
    # Only that shape passes: the action alone, "*", an ArnEquals on one cluster.
    if finding.issue != "RESOURCE_STAR" or finding.detail != ["ecs:ListTasks"]:
        return False
    return any(
        st.get("Action") == ["ecs:ListTasks"]
        and st.get("Resource") == "*"
        and list(st.get("Condition", {}).get("ArnEquals", {})) == ["ecs:cluster"]
        and ":cluster/" in st["Condition"]["ArnEquals"]["ecs:cluster"]
        for st in policy["Statement"]
    )


def lint_policy(what, doc):
    """One policy document (JSON text): a trust policy must be a service's (or a web
    identity's, for the deploy role); an identity policy must be parliament-clean,
    its ARNs of its actions' resource types, its condition keys ones they take."""
    from parliament import analyze_policy_string
    problems = []
    if what.endswith("AssumeRolePolicyDocument"):
        # parliament lints identity policies only: a trust policy is checked here.
        for st in json.loads(doc)["Statement"]:
            svc = st.get("Principal", {}).get("Service", "")
            federated = st.get("Principal", {}).get("Federated", "")
            if "Resource" in st:
                problems.append(f"{what}: a trust statement names no resource: {st}")
            elif svc.endswith(".amazonaws.com") and st.get("Action") == "sts:AssumeRole":
                pass
            elif ":oidc-provider/token.actions.githubusercontent.com" in federated and st.get("Action") == "sts:AssumeRoleWithWebIdentity":
                pass
            else:
                problems.append(f"{what}: not a service or GitHub OIDC trust statement: {st}")
        return problems
    for f in analyze_policy_string(doc, ignore_private_auditors=True).findings:
        if cluster_scoped_star(f, json.loads(doc)):
            continue
        problems.append(f"{what}: parliament {f.severity} {f.issue}: {f.detail} {f.location}")
    problems.extend(f"{what}: {p}" for p in resource_formats(json.loads(doc)))
    problems.extend(f"{what}: {p}" for p in condition_keys(json.loads(doc)))
    return problems


def main():
    problems, checked, policies = [], 0, []
    validator = ParamValidator()
    for line in open(sys.argv[1]):
        req = json.loads(line)
        proto, action = req["protocol"], req["action"]
        if proto == "json":
            model = by_target.get(req["service"])
            if model is None:
                problems.append(f"{req['service']}.{action}: no model for this target")
                continue
            op = model.operation_model(action)
            params = json.loads(req["body"] or "{}")
        elif proto == "query":
            candidates = by_signing.get(req["service"], [])
            model = next((m for m in candidates if action in m.operation_names), None)
            if model is None:
                problems.append(f"{req['service']}.{action}: no model has this action")
                continue
            form = dict(urllib.parse.parse_qsl(req["body"], keep_blank_values=True))
            op = model.operation_model(action)
            ec2 = model.protocol == "ec2"
            params = from_query(op.input_shape, form, "", ec2) or {} if op.input_shape else {}
        else:
            model = models["s3" if req["service"] == "s3" else "scheduler"]
            op, params = from_rest(model, req)
            if op is None:
                problems.append(f"{model.service_name} {req['method']} {req['path']}: no operation matches")
                continue
        if op.input_shape is not None:
            report = validator.validate(params, op.input_shape)
            if report.has_errors():
                problems.append(f"{model.service_name}.{op.name}: {report.generate_report()}")
            limits(op.input_shape, params, f"{model.service_name}.{op.name}", problems)
        checked += 1
        # A universal target (arn:aws:scheduler:::aws-sdk:SERVICE:action): its input is
        # that call's parameters, checked against that service's model too.
        target = params.get("Target") if isinstance(params, dict) else None
        if isinstance(target, dict) and target.get("Arn", "").startswith("arn:aws:scheduler:::aws-sdk:"):
            svc, action_name = target["Arn"].split(":")[-2:]
            called = models.get(svc) or session.get_service_model(svc)
            called_op = called.operation_model(action_name[0].upper() + action_name[1:])
            called_params = json.loads(target.get("Input", "{}"))
            report = validator.validate(called_params, called_op.input_shape)
            if report.has_errors():
                problems.append(f"{op.name} universal target {target['Arn']}: {report.generate_report()}")
            limits(called_op.input_shape, called_params, f"{op.name} universal target", problems)
        for key in ("PolicyDocument", "AssumeRolePolicyDocument"):
            if isinstance(params, dict) and key in params:
                policies.append((f"{op.name} {params.get('RoleName', '')} {key}", params[key]))
    for what, doc in policies:
        problems.extend(lint_policy(what, doc))
    print(f"checked {checked} requests against botocore's models, {len(policies)} IAM policies with parliament")
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    if sys.argv[1] == "--policy":
        # One policy document: `--policy FILE [AssumeRolePolicyDocument]`.
        found = lint_policy(" ".join(sys.argv[3:]) or sys.argv[2], open(sys.argv[2]).read())
        print(f"checked the policy {sys.argv[2]}")
        for p in found:
            print(p)
        sys.exit(1 if found else 0)
    main()
