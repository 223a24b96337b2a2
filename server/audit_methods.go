package server

import (
	"context"
	"strconv"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/xmlrpc"
)

func (s *Server) auditOperations() []Operation {
	return []Operation{
		{Name: "audit.list", Class: gate.NonModifier, caller: byOperator, Permission: PermAuditRead, handler: s.auditList,
			Signature: []string{"array", "struct"},
			Help: "List the audit trail, newest first: every state-changing operator operation and every denial. " +
				"Optional param: struct {actor, operation (a name, or a prefix like acl.*), since (dateTime), outcome (ok | error | denied | blacklisted), " +
				"limit (int, default 100), before (entry id: page older)}. Returns [{id, at, server_id, actor, operation, target, outcome, detail}]."},
	}
}

func (s *Server) auditList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 1); err != nil {
		return nil, err
	}
	f := db.OperationFilter{Limit: 100}
	if p.Has(0) {
		in, err := p.Struct(0, "filter")
		if err != nil {
			return nil, err
		}
		if err := in.Unknown("actor", "operation", "since", "outcome", "limit", "before"); err != nil {
			return nil, err
		}
		if f.Actor, _, err = in.String("actor"); err != nil {
			return nil, err
		}
		if f.Name, _, err = in.String("operation"); err != nil {
			return nil, err
		}
		if f.Since, _, err = in.Time("since"); err != nil {
			return nil, err
		} else if err := jobxml.CheckTime(f.Since); err != nil && !f.Since.IsZero() {
			return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "audit.list: since: %v", err)
		}
		if f.Outcome, _, err = in.String("outcome"); err != nil {
			return nil, err
		}
		switch f.Outcome {
		case "", "ok", "error", "denied", "blacklisted":
		default:
			return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "audit.list: outcome: %q is not ok, error, denied or blacklisted", f.Outcome)
		}
		if v, ok, err := in.Int("limit"); err != nil {
			return nil, err
		} else if ok {
			if v < 1 || v > 10000 {
				return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "audit.list: limit: %d is outside 1..10000", v)
			}
			f.Limit = int(v)
		}
		if f.BeforeID, _, err = in.ID("before"); err != nil {
			return nil, err
		}
	}
	ops, err := s.store.ListOperations(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]api.AuditEntry, len(ops))
	for i, o := range ops {
		out[i] = api.AuditEntry{ID: strconv.FormatInt(o.ID, 10), At: o.At, ServerID: strconv.FormatInt(o.ServerID, 10),
			Actor: o.Actor, Name: o.Name, Target: o.Target, Outcome: o.Outcome, Detail: o.Detail}
	}
	return out, nil
}
