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
// usable: Store is required; Policy may be nil (no ACL cache to drop).
type Service struct {
	Store db.Store
	// Policy is the ACL snapshot cache of the daemon; the operations that
	// change rules, groups or clients invalidate it.
	Policy *acl.Cache
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
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

func refuse(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
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
