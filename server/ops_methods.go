package server

import (
	"context"
	"strconv"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/xmlrpc"
)

func (s *Server) opsOperations() []Operation {
	return []Operation{
		{Name: api.MethodOpsList, Class: gate.NonModifier, Ungated: true, caller: byOperator, Permission: PermOpsRead, handler: s.opsList,
			Signature: []string{"array"},
			Help:      "Not gated itself, so it answers while a modifier runs. List the operations running and waiting at the gate: [{id, name, class, user, since, state (running|waiting)}], running first, then the queue in order."},
		{Name: api.MethodOpsCancel, Class: gate.NonModifier, Ungated: true, caller: byOperator, Permission: PermOpsCancel, handler: s.opsCancel,
			Signature: []string{"struct", "string"},
			Help: "Not gated itself. Cancel an operation by id: a running one has its context cancelled and stops at its next check; a waiting one leaves the queue. " +
				"Fault 404 when it no longer runs or waits."},
		{Name: api.MethodOpsClasses, Class: gate.NonModifier, Ungated: true, caller: byOperator, handler: s.opsClasses,
			Signature: []string{"array"},
			Help:      "The operation table in force: [{name, class, default_class, permission}] sorted by name."},
	}
}

func apiOp(o gate.OpInfo) api.Op {
	return api.Op{ID: strconv.FormatUint(o.ID, 10), Name: o.Name, Class: o.Class.String(), User: o.User, Since: o.Since, State: o.State}
}

func (s *Server) opsList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 0); err != nil {
		return nil, err
	}
	return mapSlice(s.gate.List(), apiOp), nil
}

func (s *Server) opsCancel(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	id, err := p.ID(0, "op_id")
	if err != nil {
		return nil, err
	}
	var info gate.OpInfo
	for _, o := range s.gate.List() {
		if o.ID == uint64(id) {
			info = o
		}
	}
	if info.ID == 0 || !s.gate.Cancel(uint64(id)) {
		return nil, xmlrpc.Faultf(xmlrpc.CodeNotFound, "ops.cancel: no operation %d runs or waits", id)
	}
	s.log.Info("operation cancelled", "request_id", requestFrom(ctx).ID, "op_id", id, "op", info.Name, "op_user", info.User, "by", callingUser(ctx).Name)
	s.record(ctx, db.AuditEntry{Actor: callingUser(ctx).Name, Name: api.MethodOpsCancel, Target: info.Name + " (op " + strconv.FormatInt(id, 10) + ", " + info.User + ")", Outcome: "ok"})
	return apiOp(info), nil
}

func (s *Server) opsClasses(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 0); err != nil {
		return nil, err
	}
	ops := s.Operations()
	out := make([]api.OpClass, len(ops))
	for i, o := range ops {
		out[i] = api.OpClass{Name: o.Name, Class: o.Class.String(), DefaultClass: o.DefaultClass.String(), Permission: o.Permission}
		if o.Ungated {
			out[i].Class, out[i].DefaultClass = "ungated", "ungated"
		}
	}
	return out, nil
}
