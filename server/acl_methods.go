package server

import (
	"context"
	"fmt"
	"strconv"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/service"
	"github.com/scirectl/scirectl/xmlrpc"
)

func (s *Server) aclOperations() []Operation {
	return []Operation{
		{Name: api.MethodACLList, Class: gate.NonModifier, caller: byOperator, Permission: PermACLRead, handler: s.aclList,
			Signature: []string{"array"},
			Help: "List the ACL rules in id order: [{id, subject, permission, target, target_id?, action, active, note, created_by, created_at}]. " +
				"A client target shows as client:NAME (its name when the rule was written) with target_id, the client's id, which is what the rule matches."},
		{Name: api.MethodACLAdd, Class: gate.Modifier, caller: byOperator, Permission: PermACLWrite, handler: s.aclAdd,
			Signature: []string{"struct", "struct"},
			Help: "Add a rule. Param: struct {subject: \"user:NAME\" | \"group:NAME\" (a user group) | \"*\" (a bare name is a user), " +
				"permission: a job permission such as run, an admin permission such as acl.write, or \"*\", " +
				"target: \"client:ID-FINGERPRINT-OR-NAME\" (a registered client, pending ones included, resolved now to its id: the rule names that client only) | " +
				"\"group:NAME\" (a client group) | \"*\" (a bare name is a client; admin permissions need \"*\"), " +
				"action: allow | deny (default allow), note, active (bool, default true)}. Deny wins over allow; no rule means deny."},
		{Name: api.MethodACLRemove, Class: gate.Modifier, caller: byOperator, Permission: PermACLWrite, handler: s.aclRemove,
			Signature: []string{"struct", "string"},
			Help:      "Remove a rule. Param: rule id. Returns the removed rule."},
		{Name: api.MethodACLSetActive, Class: gate.Modifier, caller: byOperator, Permission: PermACLWrite, handler: s.aclSetActive,
			Signature: []string{"struct", "string", "boolean"},
			Help:      "Switch a rule on or off without removing it. Params: rule id, active."},
		{Name: api.MethodACLCheck, Class: gate.NonModifier, caller: byOperator, handler: s.aclCheck, Checks: []string{PermACLRead},
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

func (s *Server) aclList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 0); err != nil {
		return nil, err
	}
	rules, err := s.svc.Rules(ctx)
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
	r := service.NewRule{CreatedBy: callingUser(ctx).Name}
	for _, f := range []struct {
		key string
		v   *string
	}{{"subject", &r.Subject}, {"permission", &r.Permission}, {"target", &r.Target}, {"action", &r.Action}, {"note", &r.Note}} {
		if *f.v, _, err = in.String(f.key); err != nil {
			return nil, err
		}
	}
	if active, ok, err := in.Bool("active"); err != nil {
		return nil, err
	} else if ok {
		r.Active = &active
	}
	rule, err := s.svc.AddRule(ctx, r)
	if err != nil {
		return nil, inMethod(api.MethodACLAdd, err)
	}
	return apiRule(rule), nil
}

func (s *Server) aclRemove(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	id, err := p.ID(0, "rule_id")
	if err != nil {
		return nil, err
	}
	r, err := s.svc.RemoveRule(ctx, id)
	if err != nil {
		return nil, err
	}
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
	r, err := s.svc.SetRuleActive(ctx, id, active)
	if err != nil {
		return nil, err
	}
	return apiRule(r), nil
}

func (s *Server) aclCheck(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(3, 3); err != nil {
		return nil, err
	}
	var args [3]string
	for i, name := range []string{"user", "permission", "target"} {
		var err error
		if args[i], err = p.String(i, name); err != nil {
			return nil, err
		}
	}
	d, err := s.svc.Check(ctx, callingUser(ctx), args[0], args[1], args[2])
	if err != nil {
		return nil, err
	}
	out := api.ACLDecision{User: d.User, Permission: d.Permission, Target: d.Target, Allowed: d.Allowed, Reason: d.Reason}
	if d.Rule != nil {
		out.RuleID = strconv.FormatInt(d.Rule.ID, 10)
	}
	return out, nil
}
