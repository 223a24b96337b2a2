// Package service holds scirectl's domain operations — clients, and in time
// every other area — as plain Go methods on typed arguments. It knows
// nothing of XML-RPC: the server's handlers are thin adapters that map a
// call's parameters to these methods and their results and errors to the
// wire (server/), and the CLI's offline commands call the same methods on a
// local store. What a caller may do is decided before (the operation
// registry's admin permission) or through Authorizer; what is done, and
// what is refused with which reason, is decided here.
package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/scirectl/scirectl/acl"
	"github.com/scirectl/scirectl/db"
)

// Service is the domain layer over one store. The zero value is not
// usable: Store is required; the other fields may be left zero.
type Service struct {
	Store db.Store
	// ServerID is this daemon's id (the servers table): the runs it sends
	// and the audit records written in a job's transaction carry it. Nil: 0.
	ServerID func() int64
	// Agents are the daemon's rules for its agents (agent.go).
	Agents AgentRules
	// Webhooks are the daemon's rules for webhooks (webhooks.go).
	WebhookRules WebhookRules
	// Policy is the ACL snapshot cache of the daemon; the operations that
	// change rules, groups or clients invalidate it. Nil: the operations
	// that read the ACL load it from Store each time.
	Policy *acl.Cache
	// Namespaces tells admin permissions from job permissions (the
	// daemon's come from its operation registry); the zero value reserves
	// nothing.
	Namespaces acl.Namespaces
	// Authz decides the admin permissions an operation needs for some of
	// its arguments only (another user's tokens, another user's ACL
	// check). Nil allows them: the owner of a local store.
	Authz Authorizer
	// RunsEnded, when set, is told after an agent's report moved runs to
	// a final state, with the ids of those that failed (maybe none): a
	// rollout may halt, or have a slot free (the daemon's rollout keeper).
	RunsEnded func(failed []int64)

	// clients is what choices of machines read (clientset.go).
	clients clientCache
}

// Authorizer decides whether the caller an operation runs for (the one
// ctx carries) holds an admin permission. The operation returns its
// refusal as it is: the daemon's authorizer logs the refusal, records it
// in the audit trail and refuses with fault 403.
type Authorizer interface {
	Authorize(ctx context.Context, permission string) error
}

// AuthorizeFunc is a function that is an Authorizer.
type AuthorizeFunc func(ctx context.Context, permission string) error

// Authorize calls f.
func (f AuthorizeFunc) Authorize(ctx context.Context, permission string) error {
	return f(ctx, permission)
}

// The admin permissions the service checks through Authz itself; those an
// operation needs from everyone are the registry's (server/).
const (
	PermUserRead  = "user.read"
	PermUserWrite = "user.write" // add and delete users, manage anyone's tokens
	PermACLRead   = "acl.read"
)

// authorize asks Authz, when there is one.
func (s *Service) authorize(ctx context.Context, permission string) error {
	if s.Authz == nil {
		return nil
	}
	return s.Authz.Authorize(ctx, permission)
}

// policy is the current ACL snapshot: the cache's, or a fresh one.
func (s *Service) policy(ctx context.Context) (*acl.Policy, error) {
	if s.Policy != nil {
		return s.Policy.Policy(ctx)
	}
	return (&acl.Cache{Load: s.Store.Policy, Namespaces: s.Namespaces}).Policy(ctx)
}

// Kinds of refusal, for callers to branch on with errors.Is (an Error
// carries one). Not found, conflict and invalid are the store's own, so a
// store error and a service refusal read alike.
var (
	ErrInvalid   = db.ErrInvalid
	ErrNotFound  = db.ErrNotFound
	ErrConflict  = db.ErrConflict
	ErrForbidden = errors.New("forbidden")
)

// Error is a refusal the caller can act on: Kind says which (ErrInvalid,
// ErrNotFound, ErrConflict, ErrForbidden), Msg says why, in words meant for
// the person who asked; the server sends Msg as the fault's text.
type Error struct {
	Kind error
	Msg  string
	// Whole marks a refusal that names what it refuses on its own terms (a
	// name check: "subject: empty"; a lookup: "no client with id …"): the
	// server sends it as it is, and puts the method's name in front of the
	// others, which name an argument of the operation ("status: …").
	Whole bool
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

func refuse(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// refuseWhole is refuse for a refusal that reads whole (Error.Whole).
func refuseWhole(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Whole: true}
}

// invalidate drops the daemon's ACL snapshot after a change to what it
// holds (rules, groups, clients).
func (s *Service) invalidate() {
	if s.Policy != nil {
		s.Policy.Invalidate()
	}
}

// each applies fn to every reference in refs, in order, stopping at the
// first failure, and returns what fn returned for those done.
func each[T any](ctx context.Context, refs []string, fn func(context.Context, string) (T, error)) ([]T, error) {
	out := make([]T, 0, len(refs))
	for _, ref := range refs {
		v, err := fn(ctx, ref)
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}
