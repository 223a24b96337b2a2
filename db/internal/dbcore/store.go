package dbcore

import (
	"context"
	"fmt"
	"time"

	"github.com/scirectl/scirectl/db"
)

// Store is the part of db.Store that dbcore implements for a driver: a
// driver's Store embeds it (made by NewStore over the driver's DB), and
// its methods are the driver's.
type Store struct {
	db      DB
	name    string // the driver's, for messages
	version uint   // the schema version the driver's migrations reach
}

// NewStore makes the shared methods of a driver's Store over d: the driver
// named name, whose newest migration is version (its LatestVersion).
func NewStore(d DB, name string, version uint) Store { return Store{d, name, version} }

// LatestVersion is the newest schema version the driver's migrations
// reach.
func (s Store) LatestVersion() uint { return s.version }

// SchemaVersion reads golang-migrate's schema_migrations table.
func (s Store) SchemaVersion(ctx context.Context) (uint, bool, error) {
	v, dirty, err := ScanSchemaVersion(s.db.Reader().QueryRow(ctx, SchemaVersionSQL))
	if err != nil {
		return 0, false, fmt.Errorf("%s schema version: %w", s.name, err)
	}
	return v, dirty, nil
}

// Ready checks that the database answers and its schema is the one this
// binary was built for.
func (s Store) Ready(ctx context.Context) error {
	v, dirty, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if dirty || v != s.version {
		return fmt.Errorf("%s schema is at version %d (dirty=%v), want %d", s.name, v, dirty, s.version)
	}
	return nil
}

// CreateGroup adds an empty group; a taken name is ErrConflict.
func (s Store) CreateGroup(ctx context.Context, kind, name, note string) (db.Group, error) {
	return CreateGroup(ctx, s.db, kind, name, note)
}

// CreateDynamicGroup adds a client group with a selector.
func (s Store) CreateDynamicGroup(ctx context.Context, name, note, selector string, byFacts bool) (db.Group, error) {
	return CreateDynamicGroup(ctx, s.db, name, note, selector, byFacts)
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

// PauseJob pauses or resumes a job.
func (s Store) PauseJob(ctx context.Context, id int64, paused bool) (bool, error) {
	return PauseJob(ctx, s.db, id, paused)
}

// EnforceRollouts halts the rollouts of scope that must halt.
func (s Store) EnforceRollouts(ctx context.Context, scope db.RolloutScope, at time.Time) ([]db.Halt, error) {
	return EnforceRollouts(ctx, s.db, scope, at)
}

// RolloutWake lists the daemon-mode clients whose pending runs may go out.
func (s Store) RolloutWake(ctx context.Context, jobIDs []int64) ([]int64, error) {
	return RolloutWake(ctx, s.db, jobIDs, time.Now().UTC())
}

// AppendOutput stores chunks of running jobs' output.
func (s Store) AppendOutput(ctx context.Context, clientID int64, chunks []db.OutputChunk, max int) ([]db.ChunkResult, error) {
	return AppendOutput(ctx, s.db, clientID, chunks, max)
}

// RunOutputs returns a job's runs with their output as a reader sees it.
func (s Store) RunOutputs(ctx context.Context, jobID int64, since map[int64]int64, max int) ([]db.Run, error) {
	return RunOutputs(ctx, s.db, jobID, since, max)
}
