"""Identities through the wire, with Python's standard xmlrpc.client: a rule
written for a client names that client only. Deleting the client removes
the rule (the audit says so), and a machine that registers afterwards, with
the same host name, gets a new id and none of the deleted client's rights.

Environment: SCIRE_URL, SCIRE_CA, SCIRE_TOKEN, and for three agents
AGENT1_CERT/AGENT1_KEY .. AGENT3_CERT/AGENT3_KEY.
"""
import os
import ssl
import unittest
import xmlrpc.client

URL = os.environ["SCIRE_URL"]
CA = os.environ["SCIRE_CA"]


def operator(token):
    ctx = ssl.create_default_context(cafile=CA)
    return xmlrpc.client.ServerProxy(URL, context=ctx, headers=[("Authorization", "Bearer " + token)])


def agent(n):
    ctx = ssl.create_default_context(cafile=CA)
    ctx.load_cert_chain(os.environ["AGENT%d_CERT" % n], os.environ["AGENT%d_KEY" % n])
    return xmlrpc.client.ServerProxy(URL, context=ctx)


def facts(host):
    return {"hostname": host, "os": "linux", "arch": "amd64", "version": "py"}


class Identities(unittest.TestCase):
    def test_deleted_clients_rules_do_not_pass_to_a_new_machine(self):
        admin = operator(os.environ["SCIRE_TOKEN"])
        alice = operator(admin.user.add("alice")["token"])

        keep = agent(1).agent.register(facts("py-keep"))["client_id"]
        old = agent(2).agent.register(facts("py-web"))["client_id"]  # the newest client
        admin.client.accept([keep, old])

        by_id = admin.acl.add({"subject": "user:alice", "permission": "run", "target": "client:" + old})
        by_name = admin.acl.add({"subject": "user:alice", "permission": "reboot", "target": "client:py-web"})
        for r in (by_id, by_name):
            self.assertEqual(r["target"], "client:py-web")
            self.assertEqual(r["target_id"], old)
        alice.job.submit({"script": "true", "targets": [old]})  # allowed by the rule

        admin.client.revoke([old])
        admin.client.delete([old])
        listed = [r["id"] for r in admin.acl.list()]
        self.assertNotIn(by_id["id"], listed)
        self.assertNotIn(by_name["id"], listed)
        audit = admin.audit.list({"operation": "client.delete"})
        self.assertEqual(len(audit), 1)
        self.assertIn("rule %s (" % by_id["id"], audit[0]["detail"])
        self.assertIn("rule %s (" % by_name["id"], audit[0]["detail"])

        # A new machine with the same host name: a new id, no rights.
        new = agent(3).agent.register(facts("py-web"))["client_id"]
        self.assertNotEqual(new, old)
        admin.client.accept([new])
        for perm, target in (("run", new), ("run", "py-web"), ("reboot", new)):
            with self.assertRaises(xmlrpc.client.Fault) as cm:
                alice.job.submit({"script": "true", "permission": perm, "targets": [target]})
            self.assertEqual(cm.exception.faultCode, 403, (perm, target))
            self.assertFalse(admin.acl.check("alice", perm, new)["allowed"])

    def test_rule_naming_an_unknown_client_is_404(self):
        admin = operator(os.environ["SCIRE_TOKEN"])
        with self.assertRaises(xmlrpc.client.Fault) as cm:
            admin.acl.add({"subject": "*", "permission": "run", "target": "client:not-registered"})
        self.assertEqual(cm.exception.faultCode, 404)

    def test_names_that_read_as_ids_are_400(self):
        for name, field in (("1234", "facts.hostname"), ("f" * 64, "facts.hostname")):
            with self.assertRaises(xmlrpc.client.Fault) as cm:
                agent(1).agent.register(facts(name))
            self.assertEqual(cm.exception.faultCode, 400)
            self.assertIn(field, cm.exception.faultString)


if __name__ == "__main__":
    unittest.main(verbosity=2)
