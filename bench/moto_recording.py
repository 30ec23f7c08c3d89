"""moto's request recorder, shared by the bench scripts: reset/start/stop it and
name the AWS action of each recorded request."""
import base64, json, urllib.request


def post(base, path):
    urllib.request.urlopen(urllib.request.Request(base + path, method="POST"))


def start(base):
    # The recorder appends to a file in moto's working directory: empty it first.
    post(base, "/moto-api/recorder/reset-recording")
    post(base, "/moto-api/recorder/start-recording")


def actions(base):
    """Stop recording; the action of each request since `start`, in order."""
    return [action for action, _ in requests(base)]


def requests(base):
    """Stop recording; (action, body) of each request since `start`, in order."""
    post(base, "/moto-api/recorder/stop-recording")
    rec = urllib.request.urlopen(base + "/moto-api/recorder/download-recording").read().decode()
    out = []
    for line in rec.splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        body = r.get("body") or ""
        if r.get("body_encoded"):
            body = base64.b64decode(body).decode(errors="replace")
        headers = r.get("headers") or {}
        target = headers.get("X-Amz-Target") or headers.get("x-amz-target") or ""
        action = target.split(".")[-1] if target else ""
        if not action and "Action=" in body:
            action = body.split("Action=")[1].split("&")[0]
        out.append((action or r.get("method", "?"), body))
    return out
