"""Schedules through the wire, with Python's standard xmlrpc.client: every
schedule method (schedule.add with its nested job struct, in int and
string members, schedule.list, schedule.get, schedule.run,
schedule.history with and without its options struct, schedule.pause,
schedule.resume, schedule.remove), the types of what they return (ids
are strings, times dateTime.iso8601, flags booleans), a tick fired in
real time, and the faults.

Environment: SCIRE_URL, SCIRE_CA, SCIRE_TOKEN, and AGENT_CERT/AGENT_KEY:
an agent that registers and is accepted, and never polls, so that the
schedules' jobs have a target and their runs stay pending.
"""
import datetime
import os
import ssl
import time
import unittest
import xmlrpc.client

URL = os.environ["SCIRE_URL"]
CA = os.environ["SCIRE_CA"]
MACHINE = "py-sched-1"
METHODS = ("schedule.add", "schedule.list", "schedule.get", "schedule.remove", "schedule.pause",
           "schedule.resume", "schedule.run", "schedule.history")


def operator():
    ctx = ssl.create_default_context(cafile=CA)
    return xmlrpc.client.ServerProxy(URL, context=ctx, headers=[("Authorization", "Bearer " + os.environ["SCIRE_TOKEN"])])


def agent():
    ctx = ssl.create_default_context(cafile=CA)
    ctx.load_cert_chain(os.environ["AGENT_CERT"], os.environ["AGENT_KEY"])
    return xmlrpc.client.ServerProxy(URL, context=ctx)


def when(v):
    """A dateTime.iso8601 value as an aware datetime (the server sends UTC)."""
    assert isinstance(v, xmlrpc.client.DateTime), (type(v), v)
    return datetime.datetime.strptime(v.value, "%Y%m%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


class Schedules(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.op = operator()
        with agent() as ag:
            res = ag.agent.register({"hostname": MACHINE, "name": MACHINE, "os": "linux", "arch": "amd64", "version": "py"})
        cls.client_id = res["client_id"]
        cls.op.client.accept([cls.client_id])

    @classmethod
    def tearDownClass(cls):
        cls.op("close")()

    def fault(self, code, fn, *args):
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            fn(*args)
        self.assertEqual(cm.exception.faultCode, code, cm.exception.faultString)
        return cm.exception.faultString

    def add(self, name, cron, **members):
        req = {"name": name, "cron": cron, "job": {"script": "echo " + name, "targets": [MACHINE], "name": name + " job"}}
        req.update(members)
        sc = self.op.schedule.add(req)
        self.addCleanup(self.remove_quietly, name)
        return sc

    def remove_quietly(self, name):
        try:
            self.op.schedule.remove(name)
        except xmlrpc.client.Fault as f:
            self.assertEqual(f.faultCode, 404, f.faultString)

    def test_methods_listed(self):
        listed = self.op.system.listMethods()
        for m in METHODS:
            self.assertIn(m, listed)
            self.assertIsInstance(self.op.system.methodHelp(m), str)

    def test_add_list_get_remove(self):
        job = {"script": "echo nightly # py", "targets": [MACHINE], "name": "py nightly",
               "interpreter": "/bin/sh", "permission": "run",
               # int members
               "timeout": 600, "priority": 5, "max_attempts": 2, "max_failures": 1,
               # string members
               "max_parallel": "50%", "success_threshold": "60%"}
        before = now()
        sc = self.add("py-nightly", "0 3 * * *", timezone="Europe/Paris", catch_up="none", overlap="allow", job=job)
        self.assertEqual(sc["name"], "py-nightly")
        self.assertEqual(sc["owner"], "admin")
        self.assertEqual(sc["cron"], "0 3 * * *")
        self.assertEqual(sc["timezone"], "Europe/Paris")
        self.assertEqual(sc["catch_up"], "none")
        self.assertEqual(sc["overlap"], "allow")
        self.assertIs(sc["paused"], False)
        created = when(sc["created_at"])
        self.assertLessEqual(abs((created - before).total_seconds()), 5)
        nxt = when(sc["next"])
        self.assertGreater(nxt, before)
        self.assertLessEqual((nxt - before).total_seconds(), 86400 + 3600)
        self.assertEqual((nxt.minute, nxt.second), (0, 0))
        self.assertIn(nxt.hour, (1, 2))  # 03:00 in Paris: 01:00 or 02:00 UTC
        for absent in ("last_tick", "last_job_id", "last_job_status"):
            self.assertNotIn(absent, sc)
        want = {"script": "echo nightly # py", "targets": [MACHINE], "groups": [], "selectors": [], "name": "py nightly",
                "interpreter": "/bin/sh", "permission": "run", "timeout": 600, "priority": 5, "max_attempts": 2,
                "max_failures": "1",  # an int given, its decimal form shown
                "max_parallel": "50%", "success_threshold": "60%"}
        self.assertEqual(sc["job"], want)

        listed = [s for s in self.op.schedule.list() if s["name"] == "py-nightly"]
        self.assertEqual(len(listed), 1)
        self.assertNotIn("script", listed[0]["job"])  # no scripts in the list
        self.assertEqual(listed[0]["job"], {k: v for k, v in want.items() if k != "script"})
        self.assertEqual(listed[0]["next"], sc["next"])

        got = self.op.schedule.get("py-nightly")
        self.assertEqual(got, sc)

        removed = self.op.schedule.remove("py-nightly")  # the schedule as it was, as schedule.list shows it
        self.assertEqual(removed, listed[0])
        self.assertEqual([s for s in self.op.schedule.list() if s["name"] == "py-nightly"], [])
        self.assertIn("py-nightly", self.fault(404, self.op.schedule.get, "py-nightly"))
        self.fault(404, self.op.schedule.remove, "py-nightly")

    def test_run_and_history(self):
        sc = self.add("py-run", "@hourly", paused=True, job={"script": "echo run", "targets": [self.client_id],
                                                             "name": "py run", "timeout": 30, "priority": 7})
        self.assertIs(sc["paused"], True)
        self.assertNotIn("next", sc)
        first = self.op.schedule.run("py-run")
        self.assertEqual(set(first), {"schedule", "id", "runs"})
        self.assertEqual(first["schedule"], "py-run")
        self.assertIsInstance(first["id"], str)
        self.assertTrue(first["id"].isdigit(), first)
        self.assertEqual(first["runs"], 1)
        second = self.op.schedule.run("py-run")
        self.assertNotEqual(second["id"], first["id"])

        j = self.op.job.get(first["id"])
        self.assertEqual((j["name"], j["submitted_by"], j["timeout"], j["priority"]), ("py run", "admin", 30, 7))
        self.assertEqual(j["counts"], {"pending": 1})

        hist = self.op.schedule.history("py-run")  # without options
        self.assertEqual([e["job_id"] for e in hist], [second["id"], first["id"]])  # newest first
        for e in hist:
            self.assertIsInstance(e["id"], str)
            self.assertTrue(e["id"].isdigit(), e)
            self.assertIsInstance(e["job_id"], str)
            self.assertEqual(e["outcome"], "run")
            self.assertNotIn("tick", e)  # schedule.run is no tick
            self.assertNotIn("reason", e)
            self.assertLessEqual(abs((when(e["at"]) - now()).total_seconds()), 30)
            self.assertEqual(e["job_status"], "pending")
            self.assertEqual(e["by"], "admin")
        newest, older = hist

        # With the options struct: a page of one, then the page before it.
        self.assertEqual(self.op.schedule.history("py-run", {"limit": 1}), [newest])
        self.assertEqual(self.op.schedule.history("py-run", {"limit": 1, "before": newest["id"]}), [older])
        self.assertEqual(self.op.schedule.history("py-run", {"before": older["id"]}), [])
        self.assertEqual(self.op.schedule.history("py-run", {}), hist)

        got = self.op.schedule.get("py-run")
        self.assertEqual((got["last_job_id"], got["last_job_status"]), (second["id"], "pending"))
        self.assertNotIn("last_tick", got)  # no tick yet: runs are not ticks

        self.assertIn("limit", self.fault(400, self.op.schedule.history, "py-run", {"limit": 0}))
        self.assertIn("limit", self.fault(400, self.op.schedule.history, "py-run", {"limit": 1001}))
        self.assertIn("after", self.fault(400, self.op.schedule.history, "py-run", {"after": "1"}))
        self.fault(400, self.op.schedule.history, "py-run", "limit=1")
        self.fault(404, self.op.schedule.history, "py-nothing")
        self.fault(404, self.op.schedule.history, "py-nothing", {"limit": 1})

        # Removing it keeps its jobs.
        self.op.schedule.remove("py-run")
        self.assertEqual(self.op.job.get(second["id"])["name"], "py run")

    def test_pause_resume(self):
        self.add("py-pause", "30 4 * * 1")
        self.assertEqual(self.op.schedule.pause("py-pause"), {"name": "py-pause", "paused": True, "changed": True})
        self.assertEqual(self.op.schedule.pause("py-pause"), {"name": "py-pause", "paused": True, "changed": False})
        got = self.op.schedule.get("py-pause")
        self.assertIs(got["paused"], True)
        self.assertNotIn("next", got)  # no next tick while paused
        self.assertEqual(self.op.schedule.resume("py-pause"), {"name": "py-pause", "paused": False, "changed": True})
        self.assertEqual(self.op.schedule.resume("py-pause"), {"name": "py-pause", "paused": False, "changed": False})
        got = self.op.schedule.get("py-pause")
        self.assertIs(got["paused"], False)
        nxt = when(got["next"])
        self.assertEqual((nxt.weekday(), nxt.hour, nxt.minute), (0, 4, 30))  # Monday 04:30 UTC
        self.fault(404, self.op.schedule.pause, "py-nothing")
        self.fault(404, self.op.schedule.resume, "py-nothing")

    def test_tick_fires(self):
        sc = self.add("py-every", "@every 2s", overlap="allow", catch_up="latest")
        created = when(sc["created_at"])
        first = created + datetime.timedelta(seconds=2)  # k intervals after the second it was created in
        self.assertEqual(when(sc["next"]), first)
        fired = []
        deadline = time.monotonic() + 10
        while not fired and time.monotonic() < deadline:
            time.sleep(0.2)
            fired = [e for e in self.op.schedule.history("py-every") if e["outcome"] == "fired"]
        self.assertTrue(fired, "no tick fired within 10 s")
        self.assertEqual(self.op.schedule.pause("py-every")["changed"], True)
        hist = self.op.schedule.history("py-every")
        self.assertTrue(all(e["outcome"] == "fired" for e in hist), hist)
        ticks = [when(e["tick"]) for e in reversed(hist)]
        self.assertEqual(ticks, [first + datetime.timedelta(seconds=2 * i) for i in range(len(ticks))])
        e = hist[0]
        self.assertIsInstance(e["id"], str)
        self.assertIsInstance(e["job_id"], str)
        self.assertGreaterEqual(when(e["at"]), when(e["tick"]))
        self.assertEqual((e["by"], e["job_status"]), ("admin", "pending"))
        got = self.op.schedule.get("py-every")
        self.assertEqual(got["last_tick"], e["tick"])
        self.assertEqual(got["last_job_id"], e["job_id"])
        self.assertEqual(len({x["job_id"] for x in hist}), len(hist))
        j = self.op.job.get(e["job_id"])
        self.assertEqual((j["name"], j["submitted_by"]), ("py-every job", "admin"))
        self.op.schedule.remove("py-every")
        self.assertEqual(self.op.job.get(e["job_id"])["id"], e["job_id"])  # its jobs stay

    def test_faults(self):
        job = {"script": "true", "targets": [MACHINE]}
        msg = self.fault(400, self.op.schedule.add, {"name": "py-bad", "cron": "61 * * * *", "job": job})
        self.assertIn("cron", msg)
        self.assertIn("cron", self.fault(400, self.op.schedule.add, {"name": "py-bad", "cron": "@every soon", "job": job}))
        self.assertIn("timezone", self.fault(400, self.op.schedule.add,
                                             {"name": "py-bad", "cron": "@daily", "timezone": "Mars/Olympus", "job": job}))
        self.assertIn("job", self.fault(400, self.op.schedule.add, {"name": "py-bad", "cron": "@daily"}))
        self.assertIn("every", self.fault(400, self.op.schedule.add, {"name": "py-bad", "cron": "@daily", "every": 2, "job": job}))
        self.assertIn("timeout", self.fault(400, self.op.schedule.add,
                                            {"name": "py-bad", "cron": "@daily", "job": dict(job, timeout="ten")}))
        tomorrow = xmlrpc.client.DateTime(time.gmtime(time.time() + 86400))
        self.assertIn("not_before", self.fault(400, self.op.schedule.add,
                                               {"name": "py-bad", "cron": "@daily", "job": dict(job, not_before=tomorrow)}))
        self.fault(400, self.op.schedule.add, "py-bad")
        self.fault(404, self.op.schedule.get, "py-bad")  # none of them was added

        self.add("py-dup", "@daily")
        self.fault(409, self.op.schedule.add, {"name": "py-dup", "cron": "@daily", "job": job})
        for method in (self.op.schedule.get, self.op.schedule.remove, self.op.schedule.pause, self.op.schedule.resume,
                       self.op.schedule.run, self.op.schedule.history):
            self.assertIn("py-nothing", self.fault(404, method, "py-nothing"))


if __name__ == "__main__":
    unittest.main()
