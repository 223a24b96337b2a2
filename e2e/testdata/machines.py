"""Facts, labels and selectors through the wire, with Python's standard
xmlrpc.client: agent.register with the machine's facts, the facts_hash of
agent.heartbeat, client.label, client.list and client.get with facts and
labels, and job.submit with selectors and name globs, and their faults.

Environment: SCIRE_URL, SCIRE_CA, SCIRE_TOKEN, and for three agents
AGENT1_CERT/AGENT1_KEY .. AGENT3_CERT/AGENT3_KEY.
"""
import hashlib
import os
import ssl
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


def facts_hash(facts):
    """client/facts' Facts.Hash: SHA-256 of the sorted KEY=VALUE lines."""
    text = "".join("%s=%s\n" % (k, facts[k]) for k in sorted(facts))
    return hashlib.sha256(text.encode()).hexdigest()


ROLES = {1: "web", 2: "web", 3: "db"}


class Selectors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        op = operator()
        for n, role in ROLES.items():
            name = "py-%s-%d" % (role, n)
            agent(n).agent.register({"hostname": name, "name": name, "os": "linux", "arch": "amd64", "version": "py",
                                     "facts": {"os": "linux", "role": role}})
            op.client.accept([name])

    def test_facts_and_hash(self):
        c = operator().client.get("py-web-1")
        self.assertEqual(c["facts"], {"os": "linux", "role": "web"})
        hb = agent(1).agent.heartbeat()
        self.assertEqual(hb["facts_hash"], facts_hash({"os": "linux", "role": "web"}))
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            agent(1).agent.register({"hostname": "py-web-1", "os": "linux", "arch": "amd64", "version": "py",
                                     "facts": {"no spaces": "x"}})
        self.assertEqual(cm.exception.faultCode, 400)
        self.assertIn("facts.facts", cm.exception.faultString)

    def test_label_and_list(self):
        op = operator()
        cs = op.client.label(["py-web-1", "py-db-3"], {"set": {"env": "prod"}})
        self.assertEqual([c["labels"]["env"] for c in cs], ["prod", "prod"])
        cs = op.client.label(["py-db-3"], {"set": {"tier": "data"}, "remove": ["env"]})
        self.assertEqual(cs[0]["labels"], {"tier": "data"})
        names = sorted(c["name"] for c in op.client.list({"selectors": ["env=prod", "tier=data"]}))
        self.assertEqual(names, ["py-db-3", "py-web-1"])
        names = sorted(c["name"] for c in op.client.list({"selectors": ["fact.role=web,env notin (prod)"]}))
        self.assertEqual(names, ["py-web-2"])
        for bad, code, words in (([{"set": {"fact.role": "x"}}], 400, "fact"), ([{}], 400, "nothing to set")):
            with self.assertRaises(xmlrpc.client.Fault) as cm:
                op.client.label(["py-web-1"], *bad)
            self.assertEqual(cm.exception.faultCode, code)
            self.assertIn(words, cm.exception.faultString)
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            op.client.list({"selectors": ["env in (prod"]})
        self.assertEqual(cm.exception.faultCode, 400)
        self.assertIn("position 12: missing ')'", cm.exception.faultString)

    def test_submit_by_selector_and_glob(self):
        op = operator()
        job = op.job.submit({"script": "true", "selectors": ["fact.role=web"]})
        got = sorted(r["client"] for r in op.job.get(job["id"])["runs"])
        self.assertEqual(got, ["py-web-1", "py-web-2"])
        job = op.job.submit({"script": "true", "targets": ["py-*-1", "py-db-3"]})
        got = sorted(r["client"] for r in op.job.get(job["id"])["runs"])
        self.assertEqual(got, ["py-db-3", "py-web-1"])
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            op.job.submit({"script": "true", "selectors": ["fact.role=mail"]})
        self.assertEqual(cm.exception.faultCode, 409)


class DynamicGroups(unittest.TestCase):
    def test_dynamic_group(self):
        op = operator()
        for n, role in ROLES.items():
            name = "py-%s-%d" % (role, n)
            agent(n).agent.register({"hostname": name, "name": name, "os": "linux", "arch": "amd64", "version": "py",
                                     "facts": {"os": "linux", "role": role}})
            try:
                op.client.accept([name])
            except xmlrpc.client.Fault:
                pass  # accepted by the other test class already
        g = op.group.create("client", "py-webs", "by fact", "fact.role=web")
        self.assertEqual(g["selector"], "fact.role=web")
        self.assertEqual(sorted(op.group.get("client", "py-webs")["members"]), ["py-web-1", "py-web-2"])
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            op.acl.add({"subject": "*", "permission": "run", "target": "group:py-webs"})
        self.assertEqual(cm.exception.faultCode, 400)
        self.assertIn("claims of the machine", cm.exception.faultString)
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            op.group.create("client", "py-bad", "", "role in (web")
        self.assertEqual(cm.exception.faultCode, 400)
        job = op.job.submit({"script": "true", "groups": ["py-webs"]})
        self.assertEqual(op.job.get(job["id"])["counts"], {"pending": 2})


if __name__ == "__main__":
    unittest.main()
