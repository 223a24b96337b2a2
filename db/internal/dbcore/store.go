package dbcore

import (
	"context"
	"time"

	"github.com/scirectl/scirectl/db"
)

// Store is the part of db.Store that dbcore implements for a driver: a
// driver's Store embeds it (made by NewStore over the driver's DB), and
// its methods are the driver's.
type Store struct{ db DB }

// NewStore makes the shared methods of a driver's Store over d.
func NewStore(d DB) Store { return Store{d} }

// CreateGroup adds an empty group; a taken name is ErrConflict.
func (s Store) CreateGroup(ctx context.Context, kind, name, note string) (db.Group, error) {
	return CreateGroup(ctx, s.db, kind, name, note)
}

// DeleteGroup removes a group with its memberships and nesting links; a
// group named by an ACL rule is ErrConflict.
func (s Store) DeleteGroup(ctx context.Context, kind, name string) error {
	return DeleteGroup(ctx, s.db, kind, name)
}

// Group returns one group with its direct members.
func (s Store) Group(ctx context.Context, kind, name string) (db.Group, error) {
	return Group(ctx, s.db, kind, name)
}

// ListGroups lists the groups of a kind by name, with their direct members.
func (s Store) ListGroups(ctx context.Context, kind string) ([]db.Group, error) {
	return ListGroups(ctx, s.db, kind)
}

// AddGroupMember adds a user, client or child group to a group.
func (s Store) AddGroupMember(ctx context.Context, kind, group string, m db.Member) error {
	return AddGroupMember(ctx, s.db, kind, group, m)
}

// RemoveGroupMember removes one direct membership.
func (s Store) RemoveGroupMember(ctx context.Context, kind, group string, m db.Member) error {
	return RemoveGroupMember(ctx, s.db, kind, group, m)
}

// AddACLRule validates and stores a rule.
func (s Store) AddACLRule(ctx context.Context, r db.ACLRule) (db.ACLRule, error) {
	return AddACLRule(ctx, s.db, r)
}

// ListACLRules lists every rule, active or not, by id.
func (s Store) ListACLRules(ctx context.Context) ([]db.ACLRule, error) {
	return ListACLRules(ctx, s.db)
}

// Policy loads the ACL rules and group memberships as one snapshot.
func (s Store) Policy(ctx context.Context) (db.PolicyData, error) {
	return Policy(ctx, s.db)
}

// Sweep applies the lease, loss and expiry transitions due at o.At.
func (s Store) Sweep(ctx context.Context, o db.SweepOptions) ([]db.Change, error) {
	return Sweep(ctx, o, s.maintain(ctx))
}

// RequeueServer hands the sent, unacknowledged runs of a dead daemon back.
func (s Store) RequeueServer(ctx context.Context, serverID int64, at time.Time, dryRun bool) ([]db.Change, error) {
	return RequeueServer(ctx, serverID, at, dryRun, s.maintain(ctx))
}

// CancelJob cancels the job's runs that are not final yet.
func (s Store) CancelJob(ctx context.Context, jobID int64, at time.Time, reason string) ([]db.Change, error) {
	return CancelJob(ctx, jobID, at, reason, s.maintain(ctx), s.db.Dialect().Classify)
}

func (s Store) maintain(ctx context.Context) InTx {
	return func(dryRun bool, fn func(Mover) error) error {
		return s.db.Maintain(ctx, dryRun, fn)
	}
}
