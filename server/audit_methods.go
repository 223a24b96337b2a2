package server

import (
	"context"
	"strconv"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/xmlrpc"
)

func (s *Server) auditOperations() []Operation {
	return []Operation{
		{Name: api.MethodAuditList, Class: gate.NonModifier, caller: byOperator, Permission: PermAuditRead, handler: s.auditList,
			Signature: []string{"array", "struct"},
			Help: "List the audit trail, newest first: every state-changing operator operation and every denial. " +
				"Optional param: struct {actor, operation (a name, or a prefix like acl.*), since (dateTime), outcome (ok | error | denied | blacklisted), " +
				"limit (int, default 100), before (entry id: page older)}. Returns [{id, at, server_id, actor, operation, target, outcome, detail}]."},
	}
}

func (s *Server) auditList(ctx context.Context, p xmlrpc.Params) (any, error) {
	f, err := auditFilter(p)
	if err != nil {
		return nil, err
	}
	ops, err := s.svc.AuditLog(ctx, f)
	if err != nil {
		return nil, inMethod(api.MethodAuditList, err)
	}
	return mapSlice(ops, func(o db.AuditEntry) api.AuditEntry {
		return api.AuditEntry{ID: strconv.FormatInt(o.ID, 10), At: o.At, ServerID: strconv.FormatInt(o.ServerID, 10),
			Actor: o.Actor, Name: o.Name, Target: o.Target, Outcome: o.Outcome, Detail: o.Detail}
	}), nil
}

// auditFilter reads audit.list's optional filter; the service checks it.
func auditFilter(p xmlrpc.Params) (f db.AuditFilter, err error) {
	f.Limit = 100
	if err = p.Count(0, 1); err != nil || !p.Has(0) {
		return f, err
	}
	in, err := p.Struct(0, "filter")
	if err != nil {
		return f, err
	}
	if err = in.Unknown("actor", "operation", "since", "outcome", "limit", "before"); err != nil {
		return f, err
	}
	if f.Actor, _, err = in.String("actor"); err != nil {
		return f, err
	}
	if f.Name, _, err = in.String("operation"); err != nil {
		return f, err
	}
	if f.Since, _, err = in.Time("since"); err != nil {
		return f, err
	}
	if f.Outcome, _, err = in.String("outcome"); err != nil {
		return f, err
	}
	if v, ok, err := in.Int("limit"); err != nil {
		return f, err
	} else if ok {
		f.Limit = int(v)
	}
	f.BeforeID, _, err = in.ID("before")
	return f, err
}
