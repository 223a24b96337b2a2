"""Events and idempotent submits through the wire, with Python's standard
xmlrpc.client: events.list (since, types, tail, limit, wait) with the
events of a job's life as a Python agent lives it, and job.submit's
idempotency_key, alone and in one system.multicall.

Environment: SCIRE_URL, SCIRE_CA, SCIRE_TOKEN, AGENT_CERT, AGENT_KEY.
"""
import os
import re
import ssl
import threading
import time
import unittest
import xmlrpc.client

URL = os.environ["SCIRE_URL"]
CA = os.environ["SCIRE_CA"]


def operator():
    ctx = ssl.create_default_context(cafile=CA)
    return xmlrpc.client.ServerProxy(URL, context=ctx, headers=[("Authorization", "Bearer " + os.environ["SCIRE_TOKEN"])])


def agent():
    ctx = ssl.create_default_context(cafile=CA)
    ctx.load_cert_chain(os.environ["AGENT_CERT"], os.environ["AGENT_KEY"])
    return xmlrpc.client.ServerProxy(URL, context=ctx)


class Events(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.op = operator()
        cls.ag = agent()
        reg = cls.ag.agent.register({"hostname": "py-ev", "name": "py-ev", "os": "linux", "arch": "amd64", "version": "py"})
        cls.op.client.accept([reg["client_id"]])

    def test_a_job_life(self):
        start = self.op.events.list({"tail": 1})["last"]
        self.assertIsInstance(start, str)
        job = self.op.job.submit({"script": "exit 2", "targets": ["py-ev"]})
        docs = self.ag.agent.getJobs(1)
        self.assertEqual(len(docs), 1)
        run = re.search(r'\brun="(\d+)"', docs[0]).group(1)
        self.ag.agent.ackJobs([run])
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.ag.agent.reportStatus('<status run="%s" state="failed" exit="2" started="%s" finished="%s"/>' % (run, now, now))
        res = self.op.events.list({"since": start})
        types = [e["type"] for e in res["events"]]
        self.assertEqual(types, ["job.submitted", "run.sent", "run.received", "run.failed", "job.finished"])
        failed = res["events"][3]
        self.assertEqual(failed["job_id"], job["id"])
        self.assertEqual(failed["run_id"], run)
        self.assertEqual(failed["client"], "py-ev")
        self.assertEqual(failed["exit_code"], 2)
        self.assertIsInstance(failed["time"], xmlrpc.client.DateTime)
        ids = [int(e["id"]) for e in res["events"]]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(res["last"], res["events"][-1]["id"])
        # Filters, the tail, the limit.
        only = self.op.events.list({"since": start, "types": ["job.*"], "limit": 1})
        self.assertEqual([e["type"] for e in only["events"]], ["job.submitted"])
        self.assertEqual(only["last"], only["events"][0]["id"])
        tail = self.op.events.list({"tail": 2, "types": ["run.*", "job.finished"]})
        self.assertEqual([e["type"] for e in tail["events"]], ["run.failed", "job.finished"])

    def test_long_poll(self):
        last = self.op.events.list({"tail": 1})["last"]
        got = {}

        def wait():
            got["res"] = operator().events.list({"since": last, "wait": 10, "types": ["job.submitted"]})
        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.3)
        job = self.op.job.submit({"script": "true", "targets": ["py-ev"]})
        t.join(15)
        self.assertFalse(t.is_alive())
        self.assertEqual(got["res"]["events"][0]["job_id"], job["id"])

    def test_faults(self):
        for bad, word in [({"types": ["Run.*"]}, "types"), ({"wait": 31}, "wait"), ({"limit": 0}, "limit"), ({"since": "x"}, "since"), ({"whatever": 1}, "whatever")]:
            with self.assertRaises(xmlrpc.client.Fault) as f:
                self.op.events.list(bad)
            self.assertEqual(f.exception.faultCode, 400, bad)
            self.assertIn(word, f.exception.faultString)

    def test_idempotency_key(self):
        job = {"script": "true", "targets": ["py-ev"], "idempotency_key": "py-retry-1"}
        first = self.op.job.submit(job)
        again = self.op.job.submit(job)
        self.assertNotIn("duplicate", first)
        self.assertTrue(again["duplicate"])
        self.assertEqual(again["id"], first["id"])
        self.assertEqual(again["runs"], 1)
        mc = xmlrpc.client.MultiCall(self.op)
        keyed = {"script": "true", "targets": ["py-ev"], "idempotency_key": "py-mc"}
        mc.job.submit(keyed)
        mc.job.submit(keyed)
        a, b = tuple(mc())
        self.assertEqual(a["id"], b["id"])
        self.assertTrue(b["duplicate"])
        with self.assertRaises(xmlrpc.client.Fault) as f:
            self.op.job.submit({"script": "true", "targets": ["py-ev"], "idempotency_key": "has space"})
        self.assertEqual(f.exception.faultCode, 400)
        self.assertIn("idempotency_key", f.exception.faultString)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    if result.wasSuccessful():
        print("OK")
    else:
        raise SystemExit(1)
