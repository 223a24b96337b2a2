"""Drive a live scirectl server with Python's standard xmlrpc.client.

Environment: SCIRE_URL, SCIRE_CA, SCIRE_TOKEN, AGENT_CERT, AGENT_KEY, and
WORKER_CERT, WORKER_KEY: a second agent identity, accepted by one test. The
server runs with --lost-grace 1s --rescue-interval 200ms.
This is a client we did not write: if it works, any conforming client does.
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
TOKEN = os.environ["SCIRE_TOKEN"]


def operator(token=TOKEN, **kw):
    ctx = ssl.create_default_context(cafile=CA)
    headers = [("Authorization", "Bearer " + token)] if token else []
    return xmlrpc.client.ServerProxy(URL, context=ctx, headers=headers, **kw)


def agent(cert="AGENT_CERT", key="AGENT_KEY"):
    ctx = ssl.create_default_context(cafile=CA)
    ctx.load_cert_chain(os.environ[cert], os.environ[key])
    return xmlrpc.client.ServerProxy(URL, context=ctx)


class Interop(unittest.TestCase):
    def test_introspection(self):
        s = operator()
        methods = s.system.listMethods()
        for m in ("system.multicall", "agent.getJobs", "agent.reportStatus", "job.submit", "client.accept"):
            self.assertIn(m, methods)
        self.assertIn("targets", s.system.methodHelp("job.submit"))
        sig = s.system.methodSignature("agent.getJobs")
        self.assertEqual(sig, [["array", "int", "int"]])  # the wait is optional

    def test_multicall(self):
        mc = xmlrpc.client.MultiCall(operator())
        mc.system.listMethods()
        mc.job.list({"limit": 5})
        mc.job.get("987654321")  # does not exist: a fault in its slot only
        mc.client.list()
        results = mc()
        self.assertIn("job.list", results[0])
        self.assertIsInstance(results[1], list)
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            results[2]
        self.assertEqual(cm.exception.faultCode, 404)
        self.assertIsInstance(results[3], list)

    def test_operator_call_with_token(self):
        jobs = operator().job.list()
        self.assertIsInstance(jobs, list)

    def test_no_token_is_401(self):
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            operator(token="").job.list()
        self.assertEqual(cm.exception.faultCode, 401)

    def test_wrong_token_is_401(self):
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            operator(token="scire_1_" + "0" * 64).job.list()
        self.assertEqual(cm.exception.faultCode, 401)

    def test_unknown_method_is_a_fault_not_http_error(self):
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            operator().no.such.method(1)
        self.assertEqual(cm.exception.faultCode, 404)
        self.assertIn("no.such.method", cm.exception.faultString)

    def test_wrong_type_is_400(self):
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            operator().job.get(["not", "an", "id"])
        self.assertEqual(cm.exception.faultCode, 400)
        self.assertIn("job_id", cm.exception.faultString)
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            operator().job.submit({"script": 42, "targets": ["x"]})
        self.assertEqual(cm.exception.faultCode, 400)
        self.assertIn("script", cm.exception.faultString)

    def test_submit_validation_names_the_field(self):
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            operator().job.submit({"script": "true", "targets": ["x"], "colour": "red"})
        self.assertEqual(cm.exception.faultCode, 400)
        self.assertIn("colour", cm.exception.faultString)
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            operator().job.submit({"script": "true", "targets": ["nobody-by-that-name"]})
        self.assertEqual(cm.exception.faultCode, 404)

    def test_agent_without_certificate_is_401(self):
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            operator().agent.getJobs(1)
        self.assertEqual(cm.exception.faultCode, 401)

    def test_agent_register_then_pending_is_402(self):
        a = agent()
        res = a.agent.register({"hostname": "py-host", "os": "linux", "arch": "amd64", "version": "py"})
        self.assertEqual(res["status"], "pending")
        self.assertTrue(res["client_id"].isdigit())
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            a.agent.getJobs(5)
        self.assertEqual(cm.exception.faultCode, 402)

    def test_agent_get_jobs_waits_for_work(self):
        a, s = agent("WORKER_CERT", "WORKER_KEY"), operator()
        res = a.agent.register({"hostname": "py-worker", "os": "linux", "arch": "amd64", "version": "py", "name": "py-worker"})
        s.client.accept([res["client_id"]])
        t0 = time.time()
        self.assertEqual(a.agent.getJobs(5, 1), [])  # nothing came within the wait
        self.assertGreaterEqual(time.time() - t0, 0.9)
        # A job submitted while the call waits is its answer.
        got = []
        waiter = threading.Thread(target=lambda: got.append(agent("WORKER_CERT", "WORKER_KEY").agent.getJobs(5, 20)))
        waiter.start()
        time.sleep(0.5)
        self.assertTrue(waiter.is_alive(), "agent.getJobs with a wait answered before any job")
        s.job.submit({"script": "echo waited", "targets": ["py-worker"]})
        waiter.join(10)
        self.assertFalse(waiter.is_alive(), "the waiting agent.getJobs was not answered within 10 s of the submit")
        self.assertEqual(len(got[0]), 1)
        run = re.search(r'\brun="(\d+)"', got[0][0]).group(1)
        a.agent.ackJobs([run])
        done = a.agent.reportStatus('<status run="%s" state="succeeded" exit="0" started="2026-11-22T10:00:00Z" finished="2026-11-22T10:00:01Z"/>' % run)
        self.assertTrue(done[0]["accepted"])
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            a.agent.getJobs(5, 31)
        self.assertEqual(cm.exception.faultCode, 400)
        self.assertIn("wait", cm.exception.faultString)

    def test_agent_heartbeat_names_held_runs(self):
        a, s = agent("WORKER_CERT", "WORKER_KEY"), operator()
        res = a.agent.register({"hostname": "py-worker", "os": "linux", "arch": "amd64", "version": "py", "name": "py-worker"})
        s.client.accept([res["client_id"]])
        hb = a.agent.heartbeat()  # the form without the param, as older agents send it
        self.assertEqual(hb["lost"], [])
        self.assertIsInstance(hb["cancel"], list)
        self.assertIn("lost", s.system.methodHelp("agent.heartbeat"))
        for script in ("echo held", "echo silent"):
            s.job.submit({"script": script, "targets": ["py-worker"], "timeout": 1})
        runs = [re.search(r'\brun="(\d+)"', d).group(1) for d in a.agent.getJobs(5)]
        self.assertEqual(len(runs), 2)
        a.agent.ackJobs(runs)
        held, silent = runs
        # Timeout 1 s + grace 1 s: naming the held run every 0.3 s keeps it;
        # the silent one is lost. Unknown ids are ignored.
        deadline = time.time() + 3
        while time.time() < deadline:
            hb = a.agent.heartbeat([held, "987654321"])
            self.assertEqual(hb["lost"], [])
            time.sleep(0.3)
        hb = a.agent.heartbeat([held, silent])
        self.assertEqual(hb["lost"], [silent])
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            a.agent.heartbeat(["not a run id"])
        self.assertEqual(cm.exception.faultCode, 400)
        done = a.agent.reportStatus('<status run="%s" state="succeeded" exit="0" started="2026-11-22T10:00:00Z" finished="2026-11-22T10:00:01Z"/>' % held)
        self.assertTrue(done[0]["accepted"])

    def test_blacklisted_operation_is_405(self):
        s = operator()
        s.blacklist.add(["audit.list"])
        try:
            with self.assertRaises(xmlrpc.client.Fault) as cm:
                s.audit.list()
            self.assertEqual(cm.exception.faultCode, 405)
            self.assertIn("audit.list", cm.exception.faultString)
            check = s.blacklist.check("audit.list")
            self.assertTrue(check["blacklisted"])
        finally:
            s.blacklist.remove(["audit.list"])
        self.assertIsInstance(s.audit.list(), list)

    def test_acl_check_explains(self):
        s = operator()
        d = s.acl.check("admin", "run", "*")
        self.assertTrue(d["allowed"])
        self.assertIn("admin", d["reason"])

    def test_datetime_and_builtin_types(self):
        s = operator(use_builtin_types=True)
        clients = s.client.list()
        for c in clients:
            self.assertEqual(type(c["registered_at"]).__name__, "datetime")


if __name__ == "__main__":
    unittest.main(verbosity=2)
