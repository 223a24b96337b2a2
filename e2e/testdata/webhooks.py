"""Webhooks through the wire, with Python's standard xmlrpc.client: every
webhook method (webhook.add, webhook.list, webhook.test, webhook.deliveries,
webhook.remove) and events.list, their faults, and a receiver in this
process (http.server on 127.0.0.1) that checks each POST's headers and
signature as docs/events.md tells a receiver to.

Environment: SCIRE_URL, SCIRE_CA, SCIRE_TOKEN, AGENT_CERT, AGENT_KEY.
"""
import hashlib
import hmac
import http.server
import json
import os
import ssl
import threading
import time
import xmlrpc.client as x

URL = os.environ["SCIRE_URL"]
CA = os.environ["SCIRE_CA"]
SECRET = "py-webhook-secret-4e1f"

ctx = ssl.create_default_context(cafile=CA)
op = x.ServerProxy(URL, context=ctx, headers=[("Authorization", "Bearer " + os.environ["SCIRE_TOKEN"])])
actx = ssl.create_default_context(cafile=CA)
actx.load_cert_chain(os.environ["AGENT_CERT"], os.environ["AGENT_KEY"])
ag = x.ServerProxy(URL, context=actx)


def as_user(token):
    return x.ServerProxy(URL, context=ctx, headers=[("Authorization", "Bearer " + token)])


def fault(code, fn, *args):
    try:
        fn(*args)
    except x.Fault as f:
        assert f.faultCode == code, (code, f.faultCode, f.faultString)
        return f.faultString
    raise AssertionError("no fault %d from %r" % (code, args))


received = []
lock = threading.Lock()


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        got = self.headers.get("X-Scire-Signature", "")
        with lock:
            received.append({
                "path": self.path,
                "event": self.headers["X-Scire-Event"],
                "delivery": self.headers["X-Scire-Delivery"],
                "type": self.headers["Content-Type"],
                "agent": self.headers["User-Agent"],
                "verified": hmac.compare_digest(want, got),
                "body": json.loads(body),
            })
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


httpd = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
hook_url = "http://127.0.0.1:%d/secret-path-7a" % httpd.server_address[1]


def wait_for(what, cond, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with lock:
            if cond():
                return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what + ": " + repr(received))


# webhook.add: the webhook, never its secret.
w = op.webhook.add({"url": hook_url, "events": ["client.*"], "secret": SECRET})
assert isinstance(w["id"], str) and w["url"] == hook_url and w["events"] == ["client.*"], w
assert w["signed"] is True and w["attempts"] == 0 and w["created_by"] == "admin", w
assert "secret" not in w and SECRET not in repr(w), w
plain = op.webhook.add({"url": "https://127.0.0.1:1/never"})  # nothing listens: it retries, harmlessly
assert plain["signed"] is False and plain["events"] == [], plain

# Its faults.
s = fault(400, op.webhook.add, {"url": "http://hooks.example.com/x", "secret": SECRET})
assert "loopback" in s and SECRET not in s and "hooks.example.com" not in s, s
s = fault(400, op.webhook.add, {"url": hook_url, "events": ["Run.*"]})
assert "events" in s, s
fault(400, op.webhook.add, {"url": hook_url, "colour": "red"})
s = fault(400, op.webhook.add, {"url": hook_url, "secret": [SECRET]})
assert SECRET not in s, s
fault(400, op.webhook.add, {})
fault(404, op.webhook.remove, "987654")
fault(404, op.webhook.test, 987654)
fault(404, op.webhook.deliveries, "987654")
fault(400, op.webhook.deliveries, w["id"], {"limit": 0})

# webhook.write, for every webhook method.
bob = op.user.add("py-hook-bob")
b = as_user(bob["token"])
fault(403, b.webhook.list)
fault(403, b.webhook.add, {"url": hook_url})
fault(403, b.webhook.test, w["id"])
fault(403, b.webhook.deliveries, w["id"])
fault(403, b.webhook.remove, w["id"])

# webhook.list.
ws = op.webhook.list()
assert [h["id"] for h in ws] == [w["id"], plain["id"]], ws
assert all("secret" not in h for h in ws), ws

# webhook.test: a signed test event, now.
t = op.webhook.test(w["id"])
assert t["delivered"] is True and t["status"] == 200 and t["webhook_id"] == w["id"], t
assert t["delivery"].startswith("test-") and t["duration_ms"] >= 0, t
wait_for("the test event", lambda: len(received) == 1)
r = received[0]
assert r["event"] == "webhook.test" and r["delivery"] == t["delivery"] and r["verified"], r
assert r["type"] == "application/json" and r["agent"].startswith("scirectl-server/"), r
assert r["body"]["id"] == "0" and r["body"]["type"] == "webhook.test", r

# Events as they come: this agent registers and is accepted.
reg = ag.agent.register({"hostname": "py-hook-host", "os": "linux", "arch": "amd64", "version": "py"})
op.client.accept([reg["client_id"]])
wait_for("client.registered and client.accepted",
         lambda: [q["event"] for q in received[1:]] == ["client.registered", "client.accepted"])
for q in received[1:]:
    assert q["verified"] and q["body"]["client_id"] == reg["client_id"] and q["body"]["client"] == "py-hook-host", q
    assert q["delivery"] == q["body"]["id"] and q["event"] == q["body"]["type"], q
assert int(received[1]["delivery"]) < int(received[2]["delivery"]), received

# The same events through events.list, from the first.
evs = op.events.list({"since": "0", "types": ["client.*"]})
assert [e["id"] for e in evs["events"]] == [q["delivery"] for q in received[1:]], evs

# webhook.deliveries: newest first, by pages. A delivery is recorded once
# the receiver has answered: a moment after it has the event.
deadline = time.time() + 30
ds = op.webhook.deliveries(w["id"])
while len(ds) < 2 and time.time() < deadline:
    time.sleep(0.05)
    ds = op.webhook.deliveries(w["id"])
assert [d["event_type"] for d in ds] == ["client.accepted", "client.registered"], ds
assert all(d["outcome"] == "delivered" and d["status"] == 200 and d["attempt"] == 1 and d["webhook_id"] == w["id"] for d in ds), ds
page = op.webhook.deliveries(w["id"], {"limit": 1, "before": ds[0]["id"]})
assert [d["id"] for d in page] == [ds[1]["id"]], page
ws = op.webhook.list()
assert ws[0]["last"]["event_id"] == ds[0]["event_id"] and int(ws[0]["cursor"]) >= int(ds[0]["event_id"]), ws

# webhook.remove: the webhook as it was; then it is gone.
gone = op.webhook.remove(w["id"])
assert gone["id"] == w["id"] and gone["last"]["outcome"] == "delivered", gone
op.webhook.remove(int(plain["id"]))
assert op.webhook.list() == [], op.webhook.list()
fault(404, op.webhook.remove, w["id"])
fault(404, op.webhook.deliveries, w["id"])

# No more POSTs once removed.
n = len(received)
op.client.revoke([reg["client_id"]])
time.sleep(1.5)
assert len(received) == n, received[n:]

# The audit trail: the secret never, the URL's path never.
trail = op.audit.list({"operation": "webhook.*", "limit": 100})
assert any(e["operation"] == "webhook.add" and e["outcome"] == "ok" for e in trail), trail
for e in trail:
    assert SECRET not in repr(e) and "secret-path" not in repr(e), e
httpd.shutdown()
print("OK")
