"""Live output through the wire, with Python's standard xmlrpc.client:
agent.output as an agent streams a running job's output (chunks in order,
a resend, an overlap, a gap, faults), job.output as the operator reads it
(whole, and from offsets, as a follower does), and the final report that
replaces what was streamed.

Environment: SCIRE_URL, SCIRE_CA, SCIRE_TOKEN, AGENT_CERT/AGENT_KEY (the
agent that streams) and OTHER_CERT/OTHER_KEY (another agent, whose run the
first one must not write to).
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


def agent(prefix):
    ctx = ssl.create_default_context(cafile=CA)
    ctx.load_cert_chain(os.environ[prefix + "_CERT"], os.environ[prefix + "_KEY"])
    return xmlrpc.client.ServerProxy(URL, context=ctx)


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def chunk(run, offset, data):
    return {"run_id": run, "offset": offset, "data": data}


class Output(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.op = operator()
        cls.ag, cls.other = agent("AGENT"), agent("OTHER")
        ids = []
        for ag, name in ((cls.ag, "py-out"), (cls.other, "py-other")):
            ids.append(ag.agent.register({"hostname": name, "name": name, "os": "linux", "arch": "amd64", "version": "py"})["client_id"])
        cls.op.client.accept(ids)

    @classmethod
    def tearDownClass(cls):
        for s in (cls.op, cls.ag, cls.other):
            s("close")()

    def fault(self, code, fn, *args):
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            fn(*args)
        self.assertEqual(cm.exception.faultCode, code, cm.exception.faultString)
        return cm.exception.faultString

    def take(self, ag, job):
        """Claim job's run as agent ag and report it running."""
        docs = ag.agent.getJobs(10)
        runs = [re.search(r'\brun="(\d+)"', d).group(1) for d in docs if re.search(r'<job [^>]*\bid="(\d+)"', d).group(1) == job]
        self.assertEqual(len(runs), 1, docs)
        ag.agent.ackJobs(runs)
        res = ag.agent.reportStatus('<status run="%s" state="running" started="%s"/>' % (runs[0], now()))
        self.assertTrue(res[0]["accepted"], res)
        return runs[0]

    def output(self, job, *args):
        outs = self.op.job.output(job, *args)
        self.assertEqual(len(outs), 1, outs)
        return outs[0]

    def test_stream_read_and_replace(self):
        job = self.op.job.submit({"script": "echo streamed", "targets": ["py-out"]})["id"]
        other_job = self.op.job.submit({"script": "echo other", "targets": ["py-other"]})["id"]
        run = self.take(self.ag, job)
        other_run = self.take(self.other, other_job)

        # Before any chunk: nothing, size 0.
        o = self.output(job)
        self.assertEqual((o["run_id"], o["client"], o["state"], o["output"], o["size"]), (run, "py-out", "running", "", 0))

        # Chunks in order, one call and several.
        acks = self.ag.agent.output([chunk(run, 0, "line 1\n")])
        self.assertEqual(acks, [{"run_id": run, "offset": 7, "accepted": True, "stop": False}])
        acks = self.ag.agent.output([chunk(run, 7, "line 2\n"), chunk(run, 14, "line 3\n")])
        self.assertEqual([(a["offset"], a["accepted"], a["stop"]) for a in acks], [(14, True, False), (21, True, False)])

        # A resend is accepted and not stored twice.
        acks = self.ag.agent.output([chunk(run, 7, "line 2\n")])
        self.assertEqual((acks[0]["offset"], acks[0]["accepted"], acks[0]["stop"]), (21, True, False))
        self.assertEqual(self.output(job)["output"], "line 1\nline 2\nline 3\n")

        # An overlap stores its new part only.
        acks = self.ag.agent.output([chunk(run, 14, "line 3\nline 4\n")])
        self.assertEqual((acks[0]["offset"], acks[0]["accepted"]), (28, True))

        # A gap is not stored; the answer says where to resume.
        acks = self.ag.agent.output([chunk(run, 40, "lost?\n")])
        self.assertEqual((acks[0]["run_id"], acks[0]["offset"], acks[0]["accepted"], acks[0]["stop"]), (run, 28, False, False))
        self.assertIn("28", acks[0]["error"])
        acks = self.ag.agent.output([chunk(run, 28, "Grüße\n")])  # resumed there; bytes, not characters
        self.assertEqual((acks[0]["offset"], acks[0]["accepted"]), (28 + len("Grüße\n".encode()), True))
        size = acks[0]["offset"]

        # Another client's run: 409, and nothing of the call is stored.
        self.fault(409, self.ag.agent.output, [chunk(run, size, "mine\n"), chunk(other_run, 0, "not mine\n")])
        self.fault(404, self.ag.agent.output, [chunk(run, size, "mine\n"), chunk("987654321", 0, "nobody's\n")])
        self.fault(400, self.ag.agent.output, [chunk("not-a-run", 0, "x\n")])
        self.fault(400, self.ag.agent.output, [chunk(run, -1, "x\n")])
        self.assertEqual(self.output(other_job)["size"], 0)

        # The operator reads it whole, and from offsets as a follower does.
        whole = "line 1\nline 2\nline 3\nline 4\nGrüße\n"
        o = self.output(job)
        self.assertEqual((o["state"], o["output"], o["size"], o["truncated"], o["omitted_bytes"]), ("running", whole, size, False, 0))
        self.assertNotIn("exit_code", o)
        o = self.output(job, "", {"offsets": {run: 7}})
        self.assertEqual((o["output"], o["size"]), (whole[7:], size))
        o = self.output(job, "py-out", {"offsets": {run: 21}})
        self.assertEqual((o["output"], o["size"]), ("line 4\nGrüße\n", size))
        o = self.output(job, "", {"offsets": {run: size}})
        self.assertEqual((o["output"], o["size"]), ("", size))
        self.assertEqual(self.output(job, "", {})["output"], whole)
        self.fault(400, self.op.job.output, job, "", {"offsets": {"abc": 1}})
        self.fault(400, self.op.job.output, job, "", {"bogus": {}})

        # The final report's output replaces what was streamed.
        res = self.ag.agent.reportStatus(
            '<status run="%s" state="succeeded" exit="0" started="%s" finished="%s"><output truncated="false">final output\n</output></status>'
            % (run, now(), now()))
        self.assertTrue(res[0]["accepted"], res)
        o = self.output(job)
        self.assertEqual((o["state"], o["exit_code"], o["output"], o["size"], o["truncated"]), ("succeeded", 0, "final output\n", 13, False))
        o = self.output(job, "", {"offsets": {run: 6}})
        self.assertEqual((o["output"], o["size"]), ("output\n", 13))
        # The run is final: a chunk now is not stored, and says stop.
        acks = self.ag.agent.output([chunk(run, size, "late\n")])
        self.assertEqual((acks[0]["accepted"], acks[0]["stop"]), (False, True))
        self.assertEqual(self.output(job)["output"], "final output\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
