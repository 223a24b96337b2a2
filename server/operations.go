package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/scirectl/scirectl/acl"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/service"
	"github.com/scirectl/scirectl/webhook"
	"github.com/scirectl/scirectl/xmlrpc"
)

// Caller kinds: who may call an operation.
type callerKind int

const (
	byAgent    callerKind = iota + 1 // identified by client certificate
	byOperator                       // identified by bearer token
)

// Operation is one entry of the operation registry: every XML-RPC method
// is one, with a stable name and a gate class (docs/protocol.md, "The gate and the blacklist").
type Operation struct {
	Name  string
	Class gate.Class
	// Permission is the admin permission an operator needs (checked before
	// the gate is entered, so a forbidden call never waits). Empty for
	// agent methods and for methods that check inside, such as job.submit
	// (the job's own permission on each target) or self-service ones.
	Permission string
	// permissionFor, when set, names the admin permission a call needs
	// from its params, before the gate like Permission (group writes:
	// group.write for client groups, acl.write for user groups); it
	// returns "" when the params are malformed, and the handler refuses
	// them.
	permissionFor func(xmlrpc.Params) string
	// Checks lists the admin permissions the handler checks itself, for
	// some callers or params (job.get: job.read for others' jobs). With
	// Permission they make the admin namespace (adminNamespaces).
	Checks    []string
	Help      string
	Signature []string
	// DefaultClass is the class before the server configuration's overrides.
	DefaultClass gate.Class
	// Changes marks a non-modifier that still changes state an operator
	// should find in the audit trail (job.cancel); modifiers always do.
	Changes bool
	// Ungated operations act on the gate itself (ops.list, ops.cancel) and
	// touch no job data; they must work while a modifier holds the gate, or
	// a stuck modifier could be neither seen nor cancelled.
	Ungated bool
	// gatesItself marks an operation that waits (events.list's long
	// poll): its handler enters the gate, in the operation's class, for
	// each read alone (enterAs), so that a wait holds no place in it and
	// delays no modifier.
	gatesItself bool
	// keepsClients marks a modifier that changes no client, so the
	// certificate cache (clientcache.go) survives it: job.submit, which
	// arrives by the hundred while agents authenticate.
	keepsClients bool
	// auditsSuccess marks a handler that writes the audit record of its
	// successful calls in its own transaction (job.submit: the job and the
	// record of its submission commit together); intercept records only its
	// failures.
	auditsSuccess bool
	caller        callerKind
	handler       xmlrpc.Handler
	// batch serves consecutive calls of one multicall at once (xmlrpc.Method.Batch).
	batch xmlrpc.BatchHandler
}

// changesState says whether the operation may change state: a modifier
// by default or by configuration, or a non-modifier marked Changes.
func (op Operation) changesState() bool {
	return op.DefaultClass == gate.Modifier || op.Class == gate.Modifier || op.Changes
}

// Operations lists the registry, sorted by name (for `ops classes`).
func (s *Server) Operations() []Operation {
	out := make([]Operation, 0, len(s.ops))
	for _, op := range s.ops {
		out = append(out, op)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// operationGroups lists every operation, by area. A method missing here is
// unreachable, and TestEveryMethodIsAnOperation fails.
func (s *Server) operationGroups() [][]Operation {
	return [][]Operation{s.agentOperations(), s.jobOperations(), s.rolloutOperations(), s.clientOperations(), s.userOperations(),
		s.groupOperations(), s.aclOperations(), s.auditOperations(), s.opsOperations(), s.blacklistOperations(), s.serverOperations(), s.dbOperations(), s.scheduleOperations(), s.eventOperations(), s.webhookOperations()}
}

func (s *Server) registerOperations() error {
	s.ops = map[string]Operation{}
	var all []Operation
	for _, ops := range s.operationGroups() {
		all = append(all, ops...)
	}
	for _, op := range all {
		if _, dup := s.ops[op.Name]; dup {
			panic("server: operation registered twice: " + op.Name)
		}
		op.DefaultClass = op.Class
		s.ops[op.Name] = op
	}
	for name, class := range s.cfg.Classes {
		op, ok := s.ops[name]
		if !ok {
			return fmt.Errorf("gate classes: %q is not an operation (see scirectl ops classes)", name)
		}
		if op.Ungated {
			return fmt.Errorf("gate classes: %q acts on the gate itself and has no class", name)
		}
		op.Class = class
		s.ops[name] = op
	}
	for _, op := range s.ops {
		s.rpc.Register(xmlrpc.Method{Name: op.Name, Help: op.Help, Signature: op.Signature, Handler: op.handler, Batch: op.batch})
	}
	s.namespaces = adminNamespaces(all)
	s.policy.Namespaces = s.namespaces
	s.svc.Namespaces = s.namespaces
	return nil
}

// adminNamespaces derives the admin namespace from the registry: every
// permission an operation or its handler checks, and the areas of the
// operator operations (the part of their names before the dot), so adding
// an operation adds its permission and the ACL keeps it apart from job
// permissions (acl.Namespaces).
func adminNamespaces(ops []Operation) acl.Namespaces {
	var perms, areas []string
	for _, op := range ops {
		if op.Permission != "" {
			perms = append(perms, op.Permission)
		}
		perms = append(perms, op.Checks...)
		if op.caller == byOperator {
			area, _, _ := strings.Cut(op.Name, ".")
			areas = append(areas, area)
		}
	}
	return acl.NewNamespaces(perms, areas)
}

type clientKey struct{}

// callingClient is the active client making an agent call.
func callingClient(ctx context.Context) db.Client {
	c, _ := ctx.Value(clientKey{}).(db.Client)
	return c
}

// callingUser is the operator making an operator call.
func callingUser(ctx context.Context) db.User {
	if u := requestFrom(ctx).User; u != nil {
		return *u
	}
	return db.User{}
}

// intercept wraps every method call (each call of a multicall too):
// authentication for the method's kind of caller, then the gate, then the
// method, then the audit trail and the fault mapping.
func (s *Server) intercept(ctx context.Context, method string, p xmlrpc.Params, next xmlrpc.Handler) (res any, err error) {
	req := requestFrom(ctx)
	req.Method = method
	defer func() {
		if err != nil {
			err = s.toFault(ctx, method, err)
			req.Fault = err.(*xmlrpc.Fault).Code
		}
	}()
	a, err := s.admit(ctx, method, p)
	if err != nil {
		return nil, err
	}
	defer a.done()
	note := &auditNote{}
	res, err = next(context.WithValue(a.ctx, auditNoteKey{}, note), p)
	if a.audited(err) {
		s.audit(a.callerCtx, a.who, method, p, err, note.String())
	}
	return res, err
}

// auditNote collects what a handler adds to the audit record of its call:
// what went with it that the parameters do not say (the ACL rules a delete
// removed).
type auditNote struct{ parts []string }

type auditNoteKey struct{}

func (n *auditNote) String() string { return strings.Join(n.parts, "; ") }

// noteAudit adds a line to the audit record of the call ctx belongs to (a
// no-op outside intercept).
func noteAudit(ctx context.Context, line string) {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		n.parts = append(n.parts, line)
	}
}

// inMethod prefixes a refusal of the service that names one of the
// operation's arguments with the method's name, as the faults of the
// handlers that checked their arguments themselves read ("client.list:
// status: …"); a refusal that reads whole (service.Error.Whole: "subject:
// empty", "no client …") and other errors are returned as they are.
func inMethod(method string, err error) error {
	var e *service.Error
	if errors.As(err, &e) && !e.Whole {
		return &service.Error{Kind: e.Kind, Msg: method + ": " + e.Msg}
	}
	return err
}

// noteRemovedRules records in the call's audit record which ACL rules went
// with a deleted client or user, each as acl.list would show it.
func noteRemovedRules(ctx context.Context, what string, rules []db.ACLRule) {
	if len(rules) == 0 {
		return
	}
	descs := make([]string, len(rules))
	for i, r := range rules {
		descs[i] = describeRule(r)
	}
	noteAudit(ctx, fmt.Sprintf("deleting %s removed ACL rules: %s", what, strings.Join(descs, ", ")))
}

// interceptBatch is intercept for a run of consecutive calls of one method
// in a multicall (xmlrpc.Method.Batch): one authentication, one gate
// admission for the run, then an audit record and a fault per call.
func (s *Server) interceptBatch(ctx context.Context, method string, ps []xmlrpc.Params, next xmlrpc.BatchHandler) ([]any, []error) {
	req := requestFrom(ctx)
	req.Method = method
	a, err := s.admit(ctx, method, ps[0])
	if err != nil {
		// Refused before the gate: each call is refused as it would be
		// alone, and each refusal recorded (the blacklist audits every
		// call it turns away).
		errs := make([]error, len(ps))
		errs[0] = err
		for i := 1; i < len(ps); i++ {
			if again, err := s.admit(ctx, method, ps[i]); err != nil {
				errs[i] = err
			} else {
				again.done() // admitted now (a busy gate freed): refused with the others all the same
				errs[i] = errs[0]
			}
		}
		for i, err := range errs {
			f := s.toFault(ctx, method, err)
			errs[i], req.Fault = f, f.Code
		}
		return make([]any, len(ps)), errs
	}
	defer a.done()
	res, errs := next(a.ctx, ps)
	if len(res) != len(ps) || len(errs) != len(ps) {
		return res, errs // xmlrpc reports the broken batch
	}
	req.Fault = 0
	for i, err := range errs {
		if a.audited(err) {
			s.audit(a.callerCtx, a.who, method, ps[i], err, "")
		}
		if err != nil {
			f := s.toFault(ctx, method, err)
			errs[i], req.Fault = f, f.Code
		}
	}
	return res, errs
}

// admission is an authenticated caller let through the gate for one
// operation (or one batch of it).
type admission struct {
	op        Operation
	who       string
	callerCtx context.Context // the request's, with the calling client
	ctx       context.Context // the gate ticket's: ops.cancel cancels it
	done      func()          // gives the gate back
}

// audited says whether intercept records a call that ended with err: a
// state-changing operator operation, unless its handler recorded the
// success itself.
func (a *admission) audited(err error) bool {
	return a.op.caller == byOperator && a.op.changesState() && !(err == nil && a.op.auditsSuccess)
}

// admit authenticates the caller of method, checks the blacklist and the
// admin permission, and enters the gate.
func (s *Server) admit(ctx context.Context, method string, p xmlrpc.Params) (*admission, error) {
	req := requestFrom(ctx)
	op, ok := s.ops[method]
	if !ok {
		return nil, fmt.Errorf("method %s has no operation entry", method)
	}
	var who string
	switch op.caller {
	case byAgent:
		if req.Fingerprint == "" {
			return nil, xmlrpc.Faultf(xmlrpc.CodeUnauthenticated, "%s: agents must present a client certificate", method)
		}
		if method != "agent.register" {
			c, err := s.clients.get(ctx, req.Fingerprint, s.store.ClientByFingerprint)
			if errors.Is(err, db.ErrNotFound) {
				return nil, xmlrpc.Faultf(xmlrpc.CodeUnauthenticated, "%s: unknown client certificate %s: call agent.register first", method, req.Fingerprint)
			} else if err != nil {
				return nil, err
			}
			if c.Status != db.ClientActive {
				return nil, xmlrpc.Faultf(xmlrpc.CodeNotAccepted, "%s: client %d (%s) is %s", method, c.ID, req.Fingerprint, c.Status)
			}
			ctx = context.WithValue(ctx, clientKey{}, c)
			who = "client:" + strconv.FormatInt(c.ID, 10)
		} else {
			who = "cert:" + req.Fingerprint[:16]
		}
	case byOperator:
		if req.AuthErr != nil {
			return nil, xmlrpc.Faultf(xmlrpc.CodeUnauthenticated, "%s: %v", method, req.AuthErr)
		}
		if req.User == nil {
			return nil, xmlrpc.Faultf(xmlrpc.CodeUnauthenticated, "%s: no token: send an Authorization: Bearer header", method)
		}
		who = req.User.Name
	}
	req.Caller = who
	if err := s.blacklisted(ctx, method, who); err != nil {
		return nil, err
	}
	perm := op.Permission
	if op.permissionFor != nil {
		if perm = op.permissionFor(p); perm == "" {
			perm = op.Permission
		}
	}
	if perm != "" {
		if err := s.authorize(ctx, perm); err != nil {
			return nil, err
		}
	}
	a := &admission{op: op, who: who, callerCtx: ctx, ctx: ctx, done: func() {}}
	if op.Ungated || op.gatesItself {
		return a, nil
	}
	t, err := s.enterGate(ctx, gate.Request{Name: method, Class: op.Class, User: who, NoWait: req.NoWait})
	if err != nil {
		var busy *gate.BusyError
		if errors.As(err, &busy) {
			return nil, xmlrpc.Faultf(xmlrpc.CodeBusy, "%s", busy.Error())
		}
		return nil, err
	}
	a.ctx = t.Context()
	if (op.changesState() && !op.keepsClients) || method == "agent.register" {
		a.done = func() {
			s.clients.reset() // it may have changed a client (clientcache.go); before anyone else enters
			t.Release()
		}
	} else {
		a.done = t.Release
	}
	return a, nil
}

// enterAs enters the gate for one step of an operation that gates itself
// (Operation.gatesItself), as the caller of ctx, in the operation's class.
func (s *Server) enterAs(ctx context.Context, method string) (*gateTicket, error) {
	req := requestFrom(ctx)
	t, err := s.enterGate(ctx, gate.Request{Name: method, Class: s.ops[method].Class, User: req.Caller, NoWait: req.NoWait})
	var busy *gate.BusyError
	if errors.As(err, &busy) {
		return nil, xmlrpc.Faultf(xmlrpc.CodeBusy, "%s", busy.Error())
	}
	return t, err
}

// audit records a state-changing operator operation with its outcome.
func (s *Server) audit(ctx context.Context, who, method string, p xmlrpc.Params, opErr error, note string) {
	outcome, detail := "ok", note
	var refusal *service.Error
	if errors.As(opErr, &refusal) {
		// Recorded as the fault it is sent as, as the handlers' own
		// refusals always were ("fault 400: subject: empty").
		opErr = s.toFault(ctx, method, opErr)
	}
	var f *xmlrpc.Fault
	if errors.As(opErr, &f) && f.Code == xmlrpc.CodeForbidden {
		return // every refusal is recorded, once, where it is decided
	}
	if opErr != nil {
		outcome, detail = "error", opErr.Error()
		if note != "" {
			detail += "; " + note // what the call did before it failed
		}
	}
	s.record(ctx, db.AuditEntry{Actor: who, Name: method, Target: describeParams(p), Outcome: outcome, Detail: detail})
}

// describeParams renders a call's parameters for the audit trail, short
// and readable: "client web", "subject=user:alice permission=run target=*".
// Long strings are cut; the trail says what was done, the job table keeps
// the content. A script is never shown, not even in part: scripts carry
// passwords (mysql -pSecret …), and audit.read does not imply job.read. Its
// length and SHA-256 stand for it, first, where the 200-rune cut cannot
// reach them: "script=412 bytes sha256:ab12… targets=web1".
func describeParams(p xmlrpc.Params) string {
	var b strings.Builder
	var add func(v any)
	add = func(v any) {
		switch v := v.(type) {
		case xmlrpc.Struct:
			add(v.Map())
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Slice(keys, func(i, j int) bool {
				if (keys[i] == secretKey) != (keys[j] == secretKey) {
					return keys[i] == secretKey
				}
				return keys[i] < keys[j]
			})
			first := true
			for _, k := range keys {
				if v[k] == nil || v[k] == "" {
					continue
				}
				if !first {
					b.WriteByte(' ')
				}
				first = false
				b.WriteString(k + "=")
				switch k {
				case secretKey:
					b.WriteString(digest(v[k]))
					continue
				case hiddenKey:
					b.WriteString("(hidden)")
					continue
				case urlKey:
					if u, ok := v[k].(string); ok {
						b.WriteString(webhook.Redact(u))
						continue
					}
				}
				add(v[k])
			}
		case []any:
			for i, x := range v {
				if i > 0 {
					b.WriteByte(',')
				}
				add(x)
			}
		case string:
			if r := []rune(v); len(r) > 120 {
				v = string(r[:120]) + "…"
			}
			b.WriteString(strings.Map(func(r rune) rune {
				if r < ' ' {
					return ' '
				}
				return r
			}, v))
		default:
			fmt.Fprint(&b, v)
		}
	}
	for i, v := range p {
		if i > 0 {
			b.WriteByte(' ')
		}
		add(v)
	}
	out := b.String()
	if r := []rune(out); len(r) > 200 {
		out = string(r[:200]) + "…"
	}
	return out
}

// secretKey is the struct member describeParams never shows: job.submit's
// script.
const secretKey = "script"

// hiddenKey is a struct member describeParams shows only as "(hidden)":
// webhook.add's secret, of which not even a hash is recorded (a short
// secret would be guessed from it). urlKey is one it shows as
// webhook.Redact does: a webhook's URL often holds a token.
const (
	hiddenKey = "secret"
	urlKey    = "url"
)

// digest stands for a script in the audit trail: its length and SHA-256
// (compare with sha256sum), or, when it is not a string at all, its type
// alone, since whatever it holds may still be the script.
func digest(v any) string {
	s, ok := v.(string)
	if !ok {
		return fmt.Sprintf("(%T)", v)
	}
	sum := sha256.Sum256([]byte(s))
	return fmt.Sprintf("%d bytes sha256:%s", len(s), hex.EncodeToString(sum[:]))
}

// toFault maps an error to the fault a caller sees. Store errors keep their
// message (they say which object and why); anything unexpected becomes 500
// with the request id, and the real error goes to the log only.
func (s *Server) toFault(ctx context.Context, method string, err error) *xmlrpc.Fault {
	var f *xmlrpc.Fault
	switch {
	case errors.As(err, &f):
		return f
	case errors.Is(err, db.ErrNotFound):
		return &xmlrpc.Fault{Code: xmlrpc.CodeNotFound, Message: err.Error()}
	case errors.Is(err, db.ErrConflict):
		return &xmlrpc.Fault{Code: xmlrpc.CodeConflict, Message: err.Error()}
	case errors.Is(err, db.ErrInvalid):
		return &xmlrpc.Fault{Code: xmlrpc.CodeInvalid, Message: err.Error()}
	case errors.Is(err, service.ErrForbidden):
		return &xmlrpc.Fault{Code: xmlrpc.CodeForbidden, Message: err.Error()}
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return &xmlrpc.Fault{Code: xmlrpc.CodeInternal, Message: method + ": cancelled"}
	}
	return s.internalError(ctx, method, err)
}

func (s *Server) internalError(ctx context.Context, method string, err error) *xmlrpc.Fault {
	id := requestFrom(ctx).ID
	s.log.Error("internal error", "request_id", id, "method", method, "err", err)
	return &xmlrpc.Fault{Code: xmlrpc.CodeInternal, Message: "internal error (request id " + id + ")"}
}
