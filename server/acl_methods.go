package server

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/scirectl/scirectl/acl"
	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/xmlrpc"
)

func (s *Server) aclOperations() []Operation {
	return []Operation{
		{Name: "acl.list", Class: gate.NonModifier, caller: byOperator, Permission: PermACLRead, handler: s.aclList,
			Signature: []string{"array"},
			Help: "List the ACL rules in id order: [{id, subject, permission, target, target_id?, action, active, note, created_by, created_at}]. " +
				"A client target shows as client:NAME (its name when the rule was written) with target_id, the client's id, which is what the rule matches."},
		{Name: "acl.add", Class: gate.Modifier, caller: byOperator, Permission: PermACLWrite, handler: s.aclAdd,
			Signature: []string{"struct", "struct"},
			Help: "Add a rule. Param: struct {subject: \"user:NAME\" | \"group:NAME\" (a user group) | \"*\" (a bare name is a user), " +
				"permission: a job permission such as run, an admin permission such as acl.write, or \"*\", " +
				"target: \"client:ID-FINGERPRINT-OR-NAME\" (a registered client, pending ones included, resolved now to its id: the rule names that client only) | " +
				"\"group:NAME\" (a client group) | \"*\" (a bare name is a client; admin permissions need \"*\"), " +
				"action: allow | deny (default allow), note, active (bool, default true)}. Deny wins over allow; no rule means deny."},
		{Name: "acl.remove", Class: gate.Modifier, caller: byOperator, Permission: PermACLWrite, handler: s.aclRemove,
			Signature: []string{"struct", "string"},
			Help:      "Remove a rule. Param: rule id. Returns the removed rule."},
		{Name: "acl.setActive", Class: gate.Modifier, caller: byOperator, Permission: PermACLWrite, handler: s.aclSetActive,
			Signature: []string{"struct", "string", "boolean"},
			Help:      "Switch a rule on or off without removing it. Params: rule id, active."},
		{Name: "acl.check", Class: gate.NonModifier, caller: byOperator, handler: s.aclCheck, Checks: []string{PermACLRead},
			Signature: []string{"struct", "string", "string", "string"},
			Help: "Explain a decision. Params: user, permission, target (a client id, name or fingerprint; \"*\" for an admin permission). " +
				"Returns {user, permission, target, allowed, rule_id?, reason}. Checking another user needs acl.read."},
	}
}

func apiRule(r db.ACLRule) api.ACLRule {
	out := api.ACLRule{ID: strconv.FormatInt(r.ID, 10), Permission: r.Permission, Action: "deny", Active: r.Active,
		Note: r.Note, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, Subject: "*", Target: "*"}
	if r.Allow {
		out.Action = "allow"
	}
	switch r.SubjectKind {
	case db.KindUser:
		out.Subject = "user:" + r.Subject
	case db.KindUserGroup:
		out.Subject = "group:" + r.Subject
	}
	switch r.TargetKind {
	case db.KindClient:
		out.Target = "client:" + r.Target
		if r.TargetID != 0 {
			out.TargetID = strconv.FormatInt(r.TargetID, 10)
		}
	case db.KindClientGroup:
		out.Target = "group:" + r.Target
	}
	return out
}

// describeRule renders a rule for messages and the audit trail:
// "rule 3 (allow user:alice run on client:web #7)".
func describeRule(r db.ACLRule) string {
	a := apiRule(r)
	target := a.Target
	if r.TargetKind == db.KindClient {
		target += " #" + a.TargetID
	}
	return fmt.Sprintf("rule %d (%s %s %s on %s)", r.ID, a.Action, a.Subject, r.Permission, target)
}

// parseSubject reads "user:NAME", "group:NAME", "*" or a bare user name.
func parseSubject(v string) (kind, name string, err error) {
	return parseRef("subject", v, db.KindUser, map[string]string{"user": db.KindUser, "group": db.KindUserGroup})
}

// parseTarget reads "client:REF", "group:NAME", "*" or a bare client ref.
func parseTarget(v string) (kind, name string, err error) {
	return parseRef("target", v, db.KindClient, map[string]string{"client": db.KindClient, "group": db.KindClientGroup})
}

func parseRef(field, v, bare string, prefixes map[string]string) (kind, name string, err error) {
	if v == "*" {
		return db.KindAny, "", nil
	}
	if p, rest, ok := strings.Cut(v, ":"); ok {
		if k, known := prefixes[p]; known {
			kind, name = k, rest
		}
	}
	if kind == "" {
		kind, name = bare, v
	}
	if err := checkName(field, name); err != nil {
		return "", "", err
	}
	return kind, name, nil
}

func (s *Server) aclList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 0); err != nil {
		return nil, err
	}
	rules, err := s.store.ListACLRules(ctx)
	if err != nil {
		return nil, err
	}
	return mapSlice(rules, apiRule), nil
}

func (s *Server) aclAdd(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	in, err := p.Struct(0, "rule")
	if err != nil {
		return nil, err
	}
	if err := in.Unknown("subject", "permission", "target", "action", "note", "active"); err != nil {
		return nil, err
	}
	r := db.ACLRule{Allow: true, Active: true, CreatedBy: callingUser(ctx).Name}
	get := func(key string) (string, error) {
		v, ok, err := in.String(key)
		if err != nil {
			return "", err
		}
		if !ok || v == "" {
			return "", xmlrpc.Faultf(xmlrpc.CodeInvalid, "acl.add: %s: required", key)
		}
		return v, nil
	}
	subj, err := get("subject")
	if err != nil {
		return nil, err
	}
	if r.SubjectKind, r.Subject, err = parseSubject(subj); err != nil {
		return nil, err
	}
	if r.Permission, err = get("permission"); err != nil {
		return nil, err
	}
	if strings.ContainsFunc(r.Permission, func(c rune) bool { return c <= ' ' || c == 0x7f }) || len(r.Permission) > 100 {
		return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "acl.add: permission: %q must be 1..100 characters without spaces", r.Permission)
	}
	tgt, err := get("target")
	if err != nil {
		return nil, err
	}
	if r.TargetKind, r.Target, err = parseTarget(tgt); err != nil {
		return nil, err
	}
	if err := s.namespaces.CheckRulePermission(r.Permission, r.TargetKind == db.KindAny); err != nil {
		return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "acl.add: permission: %v", err)
	}
	if r.TargetKind == db.KindClient {
		// Resolved now, once: the rule names this client's id, and no
		// client that later carries the same name (or, ids being never
		// reused, any other client) is matched by it.
		c, err := s.resolveClient(ctx, r.Target)
		if err != nil {
			return nil, err
		}
		r.TargetID, r.Target = c.ID, c.Name
	}
	if action, ok, err := in.String("action"); err != nil {
		return nil, err
	} else if ok {
		switch action {
		case "allow":
		case "deny":
			r.Allow = false
		default:
			return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "acl.add: action: %q is neither allow nor deny", action)
		}
	}
	if r.Note, _, err = in.String("note"); err != nil {
		return nil, err
	}
	if v, ok, err := in.Bool("active"); err != nil {
		return nil, err
	} else if ok {
		r.Active = v
	}
	r, err = s.store.AddACLRule(ctx, r)
	if err != nil {
		return nil, err
	}
	s.policy.Invalidate()
	return apiRule(r), nil
}

func (s *Server) aclRemove(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	id, err := p.ID(0, "rule_id")
	if err != nil {
		return nil, err
	}
	r, err := s.store.RemoveACLRule(ctx, id)
	if err != nil {
		return nil, err
	}
	s.policy.Invalidate()
	return apiRule(r), nil
}

func (s *Server) aclSetActive(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(2, 2); err != nil {
		return nil, err
	}
	id, err := p.ID(0, "rule_id")
	if err != nil {
		return nil, err
	}
	active, err := p.Bool(1, "active")
	if err != nil {
		return nil, err
	}
	r, err := s.store.SetACLRuleActive(ctx, id, active)
	if err != nil {
		return nil, err
	}
	s.policy.Invalidate()
	return apiRule(r), nil
}

func (s *Server) aclCheck(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(3, 3); err != nil {
		return nil, err
	}
	user, err := p.String(0, "user")
	if err != nil {
		return nil, err
	}
	perm, err := p.String(1, "permission")
	if err != nil {
		return nil, err
	}
	target, err := p.String(2, "target")
	if err != nil {
		return nil, err
	}
	if user != callingUser(ctx).Name {
		if err := s.authorize(ctx, PermACLRead); err != nil {
			return nil, err
		}
		if _, err := s.store.UserByName(ctx, user); err != nil {
			return nil, err
		}
	}
	policy, err := s.policy.Policy(ctx)
	if err != nil {
		return nil, err
	}
	var d acl.Decision
	if target == "*" || target == "" {
		target = "*"
		if s.namespaces.Reserved(perm) {
			d = policy.CheckServer(user, perm)
		} else {
			d = policy.CheckEveryClient(user, perm) // a job permission on every client
		}
	} else {
		c, err := s.resolveClient(ctx, strings.TrimPrefix(target, "client:"))
		if err != nil {
			return nil, err
		}
		target = fmt.Sprintf("%s (client %d)", c.Name, c.ID)
		d = policy.Check(user, perm, acl.Client{ID: c.ID, Name: c.Name})
	}
	out := api.ACLDecision{User: user, Permission: perm, Target: target, Allowed: d.Allowed, Reason: d.Reason}
	if d.Rule != nil {
		out.RuleID = strconv.FormatInt(d.Rule.ID, 10)
	}
	return out, nil
}
