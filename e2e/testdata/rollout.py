"""Rollouts through the wire, with Python's standard xmlrpc.client: the
rollout members of job.submit in their string and int forms, what job.get
shows of them, job.pause, job.resume and job.rerun, and their faults. The
agents are Python too: they take, acknowledge and report runs by hand, so
the window and the failure budget are seen from the agent's side.

Environment: SCIRE_URL, SCIRE_CA, SCIRE_TOKEN, and for six agents
AGENT1_CERT/AGENT1_KEY .. AGENT6_CERT/AGENT6_KEY. Agents 1-3 never poll;
agent 4 is the pause test's, agents 5 and 6 the rerun test's.
"""
import os
import re
import ssl
import time
import unittest
import xmlrpc.client

URL = os.environ["SCIRE_URL"]
CA = os.environ["SCIRE_CA"]


def operator():
    ctx = ssl.create_default_context(cafile=CA)
    return xmlrpc.client.ServerProxy(URL, context=ctx, headers=[("Authorization", "Bearer " + os.environ["SCIRE_TOKEN"])])


def agent(n):
    ctx = ssl.create_default_context(cafile=CA)
    ctx.load_cert_chain(os.environ["AGENT%d_CERT" % n], os.environ["AGENT%d_KEY" % n])
    return xmlrpc.client.ServerProxy(URL, context=ctx)


def facts(name):
    return {"hostname": name, "name": name, "os": "linux", "arch": "amd64", "version": "py"}


def runs_of(docs, job_id):
    """The run ids of job job_id among job documents."""
    out = []
    for d in docs:
        if re.search(r'<job [^>]*\bid="(\d+)"', d).group(1) == job_id:
            out.append(re.search(r'\brun="(\d+)"', d).group(1))
    return out


def report(ag, run, state, code):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    res = ag.agent.reportStatus('<status run="%s" state="%s" exit="%d" started="%s" finished="%s"/>' % (run, state, code, now, now))
    assert res[0]["accepted"], res


class Rollout(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.op = operator()
        cls.ids = {}
        for n in range(1, 7):
            with agent(n) as ag:
                cls.ids[n] = ag.agent.register(facts("py-roll-%d" % n))["client_id"]
        cls.op.client.accept(list(cls.ids.values()))

    @classmethod
    def tearDownClass(cls):
        cls.op("close")()

    def agent(self, n):
        ag = agent(n)
        self.addCleanup(ag("close"))
        return ag

    def targets(self, *ns):
        return [self.ids[n] for n in ns]

    def submit(self, *ns, **rollout):
        req = {"script": "true", "targets": self.targets(*ns)}
        req.update(rollout)
        return self.op.job.submit(req)

    def fault(self, code, fn, *args):
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            fn(*args)
        self.assertEqual(cm.exception.faultCode, code, cm.exception.faultString)
        return cm.exception.faultString

    def test_string_forms(self):
        res = self.submit(1, 2, 3, max_parallel="2", max_failures="50%", canary=1, success_threshold="60%")
        self.assertEqual(res["runs"], 3)
        j = self.op.job.get(res["id"])
        self.assertEqual(j["max_parallel"], 2)
        self.assertEqual(j["max_failures"], 1)  # 50% of 3 runs, rounded down
        self.assertEqual(j["canary"], 1)
        self.assertEqual(j["canary_phase"], "running")
        self.assertEqual(j["success_threshold"], 60)
        self.assertIs(j["paused"], False)
        self.assertIs(j["halted"], False)
        self.assertNotIn("halt_reason", j)
        self.assertNotIn("rerun_of", j)
        # The canary is the first target.
        canaries = [r["client_id"] for r in j["runs"] if r.get("canary")]
        self.assertEqual(canaries, [self.ids[1]])
        # A percentage window is rounded up, and is at least 1.
        self.assertEqual(self.op.job.get(self.submit(1, 2, 3, max_parallel="34%")["id"])["max_parallel"], 2)
        self.assertEqual(self.op.job.get(self.submit(1, 2, 3, max_parallel="1%")["id"])["max_parallel"], 1)

    def test_int_forms(self):
        j = self.op.job.get(self.submit(1, 2, max_parallel=1, max_failures=0, success_threshold=80)["id"])
        self.assertEqual(j["max_parallel"], 1)
        self.assertEqual(j["max_failures"], 0)
        self.assertEqual(j["success_threshold"], 80)
        self.assertEqual(j["canary"], 0)
        self.assertNotIn("canary_phase", j)

    def test_plain_job_has_no_rollout(self):
        j = self.op.job.get(self.submit(1, 2)["id"])
        self.assertNotIn("max_parallel", j)
        self.assertNotIn("max_failures", j)
        self.assertEqual(j["canary"], 0)
        self.assertEqual(j["success_threshold"], 100)
        self.assertIs(j["paused"], False)
        self.assertIs(j["halted"], False)

    def test_bad_values_are_400_and_name_the_member(self):
        before = len(self.op.job.list({"limit": 1000}))
        for member, value in (("max_parallel", "ten"), ("max_parallel", "-1"), ("max_parallel", "150%"),
                              ("max_failures", "many"), ("max_failures", -2),
                              ("success_threshold", "0%"), ("success_threshold", "101%"), ("success_threshold", 0),
                              ("canary", 3), ("canary", -1), ("canary", "one")):
            msg = self.fault(400, lambda: self.submit(1, 2, 3, **{member: value}))
            self.assertIn(member, msg, (member, value))
        # canary >= runs: says why.
        self.assertIn("3 canaries for 3 runs", self.fault(400, lambda: self.submit(1, 2, 3, canary=3)))
        self.assertEqual(len(self.op.job.list({"limit": 1000})), before, "a refused job.submit stored a job")

    def test_pause_resume(self):
        ag = self.agent(4)
        job = self.submit(4, 1)["id"]  # agent 1 never polls: its run stays pending
        self.assertEqual(self.op.job.pause(job), {"job_id": job, "paused": True, "changed": True})
        self.assertEqual(self.op.job.pause(job), {"job_id": job, "paused": True, "changed": False})
        self.assertIs(self.op.job.get(job)["paused"], True)
        self.assertEqual(runs_of(ag.agent.getJobs(10), job), [], "a paused job handed out a run")
        self.assertEqual(self.op.job.resume(job), {"job_id": job, "paused": False, "changed": True})
        self.assertEqual(self.op.job.resume(job), {"job_id": job, "paused": False, "changed": False})
        self.assertIs(self.op.job.get(job)["paused"], False)
        runs = runs_of(ag.agent.getJobs(10), job)
        self.assertEqual(len(runs), 1, "the resumed job's run did not go out")
        ag.agent.ackJobs(runs)
        report(ag, runs[0], "succeeded", 0)
        # Agent 1's run is still pending: the job can be paused again.
        self.assertIs(self.op.job.pause(job)["changed"], True)
        # A job with no run left to hand out cannot be paused.
        done = self.submit(4)["id"]
        runs = runs_of(ag.agent.getJobs(10), done)
        self.assertEqual(len(runs), 1)
        self.fault(409, self.op.job.pause, done)
        ag.agent.ackJobs(runs)
        report(ag, runs[0], "succeeded", 0)
        # Unknown and malformed ids.
        for method in (self.op.job.pause, self.op.job.resume):
            self.fault(404, method, "987654321")
            self.fault(400, method, "not-a-number")

    def test_rerun(self):
        a5, a6 = self.agent(5), self.agent(6)
        # A job whose every run succeeded has nothing to rerun --failed.
        ok = self.submit(5)["id"]
        runs = runs_of(a5.agent.getJobs(10), ok)
        a5.agent.ackJobs(runs)
        report(a5, runs[0], "succeeded", 0)
        self.fault(409, self.op.job.rerun, ok, {"failed": True})

        # A rollout of two, one at a time, halting at the first failure.
        job = self.submit(5, 6, max_parallel="1", max_failures=0)["id"]
        first = runs_of(a5.agent.getJobs(10), job)
        self.assertEqual(len(first), 1)
        self.assertEqual(runs_of(a6.agent.getJobs(10), job), [], "a second run went out through a window of 1")
        a5.agent.ackJobs(first)
        report(a5, first[0], "succeeded", 0)
        second = runs_of(a6.agent.getJobs(10), job)
        self.assertEqual(len(second), 1, "the window did not free when the first run ended")
        a6.agent.ackJobs(second)
        report(a6, second[0], "failed", 1)
        deadline = time.time() + 10
        while True:
            j = self.op.job.get(job)
            if j["halted"] or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertIs(j["halted"], True)
        self.assertEqual(j["halt_reason"], "failure budget exceeded: 1 of 2 failed")
        self.assertEqual(j["status"], "failed")

        res = self.op.job.rerun(job, {"failed": True})
        self.assertEqual((res["runs"], res["rerun_of"]), (1, job))
        again = self.op.job.get(res["id"])
        self.assertEqual(again["rerun_of"], job)
        self.assertEqual([r["client_id"] for r in again["runs"]], [self.ids[6]])
        self.assertEqual((again["max_parallel"], again["max_failures"]), (1, 0))  # the old job's limits
        self.assertIs(again["halted"], False)
        for opts in ((), ({},), ({"failed": False},)):
            res = self.op.job.rerun(job, *opts)
            self.assertEqual((res["runs"], res["rerun_of"]), (2, job), opts)
        self.assertIn("bogus", self.fault(400, self.op.job.rerun, job, {"bogus": True}))
        self.fault(400, self.op.job.rerun, job, {"failed": "yes"})
        self.fault(404, self.op.job.rerun, "987654321")


if __name__ == "__main__":
    unittest.main(verbosity=2)
