"""Retention through the wire, with Python's standard xmlrpc.client:
job.delete (an array of job ids, all or none: 404, 409, 400, 403 for
another user's job without job.delete) and job.prune (older_than as a
duration string or int seconds, dry_run), their results and their audit
records. The agent is Python too: it takes, acknowledges and reports its
runs by hand.

Environment: SCIRE_URL, SCIRE_CA, SCIRE_TOKEN, AGENT_CERT/AGENT_KEY.
"""
import os
import re
import ssl
import time
import unittest
import xmlrpc.client

URL = os.environ["SCIRE_URL"]
CA = os.environ["SCIRE_CA"]


def operator(token=None):
    ctx = ssl.create_default_context(cafile=CA)
    return xmlrpc.client.ServerProxy(URL, context=ctx, headers=[("Authorization", "Bearer " + (token or os.environ["SCIRE_TOKEN"]))])


def agent():
    ctx = ssl.create_default_context(cafile=CA)
    ctx.load_cert_chain(os.environ["AGENT_CERT"], os.environ["AGENT_KEY"])
    return xmlrpc.client.ServerProxy(URL, context=ctx)


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Retention(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.op = operator()
        cls.ag = agent()
        cid = cls.ag.agent.register({"hostname": "py-ret", "name": "py-ret", "os": "linux", "arch": "amd64", "version": "py"})["client_id"]
        cls.op.client.accept([cid])
        cls.bob = operator(cls.op.user.add("py-bob")["token"])
        cls.op.acl.add({"subject": "user:py-bob", "permission": "run", "target": "*", "action": "allow"})

    def fault(self, code, fn, *args):
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            fn(*args)
        self.assertEqual(cm.exception.faultCode, code, cm.exception.faultString)
        return cm.exception.faultString

    def run_job(self, who, script):
        """Submit a job as who and have the agent run it to success."""
        job = who.job.submit({"script": script, "targets": ["py-ret"]})["id"]
        docs = self.ag.agent.getJobs(10)
        runs = [re.search(r'\brun="(\d+)"', d).group(1) for d in docs if re.search(r'<job [^>]*\bid="(\d+)"', d).group(1) == job]
        self.assertEqual(len(runs), 1, docs)
        self.ag.agent.ackJobs(runs)
        res = self.ag.agent.reportStatus('<status run="%s" state="succeeded" exit="0" started="%s" finished="%s"/>' % (runs[0], now(), now()))
        self.assertTrue(res[0]["accepted"], res)
        return job

    def test_delete(self):
        mine, theirs = self.run_job(self.bob, "echo bob"), self.run_job(self.op, "echo admin")
        pending = self.op.job.submit({"script": "sleep 1", "targets": ["py-ret"], "not_before": xmlrpc.client.DateTime(time.time() + 3600)})["id"]

        # All or none, naming what refused.
        self.assertIn(pending, self.fault(409, self.op.job.delete, [theirs, pending]))
        self.assertIn("987654321", self.fault(404, self.op.job.delete, [theirs, "987654321"]))
        self.fault(400, self.op.job.delete, [])
        self.fault(400, self.op.job.delete, theirs)  # not an array
        self.fault(400, self.op.job.delete, ["x"])
        # Bob deletes his own job, not another's without job.delete.
        self.fault(403, self.bob.job.delete, [mine, theirs])
        res = self.bob.job.delete([mine, int(mine)])
        self.assertEqual((res["job_ids"], res["jobs"], res["runs"]), ([mine], 1, 1))
        self.fault(404, self.op.job.get, mine)
        res = self.op.job.delete([int(theirs)])
        self.assertEqual((res["job_ids"], res["jobs"], res["runs"]), ([theirs], 1, 1))
        self.op.job.get(pending)

        audit = self.op.audit.list({"operation": "job.delete", "outcome": "ok"})
        self.assertEqual([(e["actor"], e["detail"]) for e in audit[:2]], [("admin", "deleted 1 jobs, 1 runs"), ("py-bob", "deleted 1 jobs, 1 runs")])
        self.op.job.cancel(pending)
        self.op.job.delete([pending])

    def test_prune(self):
        done = self.run_job(self.op, "echo old")
        time.sleep(1.1)  # ended more than a second ago
        self.fault(403, self.bob.job.prune, {"older_than": "1s"})
        for bad in ({}, {"older_than": "soon"}, {"older_than": -1}, {"older_than": 1.5}, {"older_than": "1s", "force": True}):
            self.fault(400, self.op.job.prune, bad)
        res = self.op.job.prune({"older_than": "1d"})
        self.assertEqual((res["jobs"], res["older_than"], res["dry_run"]), (0, "1d", False))
        self.assertIsInstance(res["before"], xmlrpc.client.DateTime)
        res = self.op.job.prune({"older_than": 1, "dry_run": True})
        self.assertEqual((res["jobs"], res["runs"], res["older_than"], res["dry_run"]), (1, 1, "1s", True))
        self.op.job.get(done)
        res = self.op.job.prune({"older_than": "1s"})
        self.assertEqual((res["jobs"], res["runs"]), (1, 1))
        self.fault(404, self.op.job.get, done)
        audit = self.op.audit.list({"operation": "job.prune", "outcome": "ok"})
        self.assertEqual((audit[0]["target"], audit[0]["detail"]), ("older_than=1s", "deleted 1 jobs, 1 runs"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
