package server

import (
	"context"
	"time"

	"github.com/scirectl/scirectl/acl"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/service"
	"github.com/scirectl/scirectl/xmlrpc"
)

// Permissions of the admin API. They are checked with the same ACL as jobs,
// against rules whose target is "*" (the server itself), so one mechanism
// answers both "may alice run this on web1" and "may alice accept clients";
// but they are a namespace of their own (acl.Namespaces): none of them ever
// authorises a job, and no job permission grants an admin action. The
// built-in admin holds all of them unless a deny rule names it.
const (
	PermJobRead      = service.PermJobRead // see other users' jobs (one's own are always visible)
	PermJobCancel    = service.PermJobCancel
	PermJobDelete    = service.PermJobDelete // delete others' jobs (one's own need none), prune old jobs
	PermClientRead   = "client.read"
	PermClientAccept = "client.accept"
	PermClientReject = "client.reject"
	PermClientRevoke = "client.revoke"
	PermClientDelete = "client.delete"
	PermClientLabel  = "client.label"
	PermUserRead     = service.PermUserRead  // others' tokens; one's own are always visible
	PermUserWrite    = service.PermUserWrite // add and delete users, manage anyone's tokens
	PermGroupRead    = "group.read"
	PermGroupWrite   = "group.write"
	PermACLRead      = service.PermACLRead // and explain others' decisions (acl.check)
	PermACLWrite     = "acl.write"
	PermAuditRead    = "audit.read"
	PermOpsRead      = "ops.read"   // see the operations at the gate
	PermOpsCancel    = "ops.cancel" // cancel anyone's operation
	// schedule.read shows schedules with their scripts; schedule.write
	// adds, removes, pauses, resumes and runs them.
	PermScheduleRead  = "schedule.read"
	PermScheduleWrite = "schedule.write"
	// webhook.write adds, lists, removes and tests webhooks and reads
	// their deliveries: a webhook's URL often holds a token, and whoever
	// may list webhooks may send every event anywhere.
	PermWebhookWrite = "webhook.write"
)

// AdminPermissions lists the permissions of the admin API, sorted: every
// permission an operation of the registry checks (adminNamespaces).
func (s *Server) AdminPermissions() []string { return s.namespaces.Admin() }

// may reports whether the calling operator holds an admin permission.
func (s *Server) may(ctx context.Context, perm string) (acl.Decision, error) {
	policy, err := s.policy.Policy(ctx)
	if err != nil {
		return acl.Decision{}, err
	}
	return policy.CheckServer(callingUser(ctx).Name, perm), nil
}

// authorize refuses the call with fault 403 unless the calling operator
// holds perm; a refusal is logged and recorded in the audit trail.
func (s *Server) authorize(ctx context.Context, perm string) error {
	d, err := s.may(ctx, perm)
	if err != nil {
		return err
	}
	if d.Allowed {
		return nil
	}
	req := requestFrom(ctx)
	user := callingUser(ctx).Name
	s.log.Warn("operation denied", "request_id", req.ID, "method", req.Method, "user", user, "permission", perm, "reason", d.Reason)
	s.record(ctx, db.AuditEntry{Actor: user, Name: req.Method, Outcome: "denied", Detail: d.Reason})
	return xmlrpc.Faultf(xmlrpc.CodeForbidden, "%s: %s", req.Method, d.Reason)
}

// record writes an audit entry; a failure to record is logged, never
// hidden, but does not undo what was done.
func (s *Server) record(ctx context.Context, op db.AuditEntry) {
	if op.At.IsZero() {
		op.At = time.Now().UTC()
	}
	op.ServerID = s.serverID()
	if err := s.store.RecordOperation(context.WithoutCancel(ctx), op); err != nil {
		s.log.Error("audit", "request_id", requestFrom(ctx).ID, "operation", op.Name, "err", err)
	}
}
