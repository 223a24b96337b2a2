// Package db defines what scirectl keeps and the Store interface every
// database driver implements. Callers (the server, the CLI's offline
// commands, the maintenance services) only see this package; drivers live in
// sub-packages (db/sqlite, later db/postgres), register themselves by URL
// scheme like database/sql drivers, and are all held to the same conformance
// suite in db/storetest.
package db

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/rollout"
	"github.com/scirectl/scirectl/runstate"
)

// Errors callers branch on. Drivers wrap them with context; test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
)

// Store is everything the server keeps. Every method is safe for concurrent
// use. Methods that move runs enforce the run state machine of package
// runstate atomically: the check and the change happen in one statement or
// transaction, so two daemons or two requests can never both win a transition.
type Store interface {
	ScheduleStore
	EventStore
	WebhookStore
	RetentionStore

	// Clients: identity is the certificate fingerprint.
	RegisterClient(ctx context.Context, r ClientRegistration) (Client, error)
	Client(ctx context.Context, id int64) (Client, error)
	ClientByFingerprint(ctx context.Context, fingerprint string) (Client, error)
	ListClients(ctx context.Context, f ClientFilter) ([]Client, error)
	// ClientsVersion is a number that moves on, in the transaction of the
	// change, whenever a client is added or deleted or its name, status,
	// labels or facts change, whichever daemon changes it; a reset and a
	// restore move it on too, past every value it had. Nothing else moves
	// it: not a client heard from (TouchClients), nor a registration that
	// changes none of those. So what was read of those columns after the
	// version was read is still current while the version is the same. A
	// negative version is none (its row is missing): nothing read is
	// current.
	ClientsVersion(ctx context.Context) (int64, error)
	// ListClientTraits lists what choosing machines reads of every client,
	// by id, with the clients version it is of: both from one snapshot.
	// Maps may be shared among clients (equal label sets): read only.
	ListClientTraits(ctx context.Context) (version int64, cs []ClientTraits, err error)
	SetClientStatus(ctx context.Context, id int64, to ClientStatus) (Client, error)
	// SetClientLabels sets and removes labels of clients (by id), all in
	// one transaction, and returns the clients as they are then; an
	// unknown id is ErrNotFound and nothing changes. Keys and values are
	// the caller's to check (selector.CheckLabel).
	SetClientLabels(ctx context.Context, ids []int64, set map[string]string, remove []string) ([]Client, error)
	// TouchClients records when clients were last heard from, in one
	// write; a time older than the stored one changes nothing, an unknown
	// id is skipped.
	TouchClients(ctx context.Context, seen map[int64]time.Time) error

	// DeleteClient removes a client that is not active (revoke it first),
	// with its group memberships, its runs and the ACL rules that name it
	// (in the same transaction: a later client never inherits them), and
	// returns those rules as they were; ErrConflict while the client is
	// active or has a run in flight (sent, received or running).
	DeleteClient(ctx context.Context, id int64) ([]ACLRule, error)

	// Users and their bearer tokens (only hashes are stored).
	EnsureUser(ctx context.Context, name string) (User, error)
	// CreateUser adds a user; ErrConflict when the name is taken.
	CreateUser(ctx context.Context, name string) (User, error)
	UserByName(ctx context.Context, name string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// DeleteUser removes a user with its tokens, its group memberships and
	// the ACL rules whose subject it is (in the same transaction: a later
	// user of the same name never inherits them), and returns those rules
	// as they were. The built-in admin is ErrInvalid.
	DeleteUser(ctx context.Context, name string) ([]ACLRule, error)
	CreateToken(ctx context.Context, userID int64, name string, hash []byte) (Token, error)
	TokenByID(ctx context.Context, id int64) (Token, User, error)
	ListTokens(ctx context.Context, userID int64) ([]Token, error)
	// RevokeToken marks a token revoked; revoking twice is not an error.
	RevokeToken(ctx context.Context, id int64) (Token, error)

	// Groups of users (KindUserGroup) and of clients (KindClientGroup).
	// Groups nest: a member of a child group is a member of the parent.
	CreateGroup(ctx context.Context, kind, name, note string) (Group, error)
	// CreateDynamicGroup adds a client group whose members are the
	// clients selector matches (the caller checks it), and which selects
	// by facts when byFacts: then no ACL rule may name it and no group
	// may nest it (ErrInvalid). A dynamic group has no members or
	// children of its own: adding one is ErrInvalid.
	CreateDynamicGroup(ctx context.Context, name, note, selector string, byFacts bool) (Group, error)
	// DeleteGroup removes a group, its memberships and its nesting links;
	// ErrConflict while an ACL rule names it (a group is named by rules
	// deliberately, often by several: they are removed first, by hand, so
	// a later group of the same name never inherits them).
	DeleteGroup(ctx context.Context, kind, name string) error
	Group(ctx context.Context, kind, name string) (Group, error)
	ListGroups(ctx context.Context, kind string) ([]Group, error)
	// AddGroupMember and RemoveGroupMember change one membership. Adding an
	// existing membership is not an error; a nesting that would make a cycle
	// is ErrInvalid; removing a membership that does not exist is ErrNotFound.
	AddGroupMember(ctx context.Context, kind, group string, m Member) error
	RemoveGroupMember(ctx context.Context, kind, group string, m Member) error

	// ACL rules. AddACLRule validates the rule (kinds, names present,
	// a subject or target that names a user, group or client that exists)
	// and returns it with its id. A client target is TargetID (the caller
	// resolves a name or fingerprint first, and ErrNotFound is a client
	// that does not exist); the store fills in Target with the client's
	// name at that moment, for display.
	AddACLRule(ctx context.Context, r ACLRule) (ACLRule, error)
	RemoveACLRule(ctx context.Context, id int64) (ACLRule, error)
	SetACLRuleActive(ctx context.Context, id int64, active bool) (ACLRule, error)
	ListACLRules(ctx context.Context) ([]ACLRule, error)

	// Jobs and runs.
	SubmitJob(ctx context.Context, j NewJob) (Job, error)
	// SubmitJobs stores several jobs as SubmitJob does, and the audit
	// records of their submission, in one transaction: all or nothing, and
	// one commit for the lot (consecutive job.submit calls of a multicall).
	// The audit trail never names a job that was not stored. An error
	// names the job that failed (SubmitError).
	SubmitJobs(ctx context.Context, js []NewJob, audit []AuditEntry) ([]Job, error)
	Job(ctx context.Context, id int64) (Job, error)
	ListJobs(ctx context.Context, f JobFilter) ([]Job, error)
	Runs(ctx context.Context, jobID int64) ([]Run, error)
	Run(ctx context.Context, id int64) (Run, error)

	// The agent protocol.
	ClaimRuns(ctx context.Context, c Claim) ([]Dispatch, error)
	AckRuns(ctx context.Context, clientID int64, runIDs []int64, at time.Time) (AckResult, error)
	ReportRuns(ctx context.Context, clientID int64, reports []Report, at time.Time) ([]ReportResult, error)
	// RenewRuns takes an agent's word that it still holds runIDs (queued
	// or running; agent.heartbeat). clientID's runs among them that are
	// received (runstate.Renew) have their loss timer restarted: updated_at
	// becomes at, unless it is later already. Running runs are left alone
	// (their timer runs from the start report), and so are runs in other
	// states, runs of other clients and unknown ids: they are ignored, not
	// an error. The result counts the renewed runs and lists, ascending,
	// the given runs of clientID that were declared lost (failed, reason
	// "lost"), which the agent must drop.
	RenewRuns(ctx context.Context, clientID int64, runIDs []int64, at time.Time) (RenewResult, error)

	// AppendOutput stores chunks of clientID's running jobs' output
	// (agent.output), in order, in one transaction. A chunk is stored when
	// it starts where the run's stream ends (ChunkResult.Offset, the
	// stream's new length); one that starts past the end is not (a chunk
	// before it was lost: the agent sends again from Offset); one the
	// store has already (a resend) is accepted without a change, and one
	// that overlaps the end has its new part stored. The stream keeps what
	// runoutput.Dropped leaves under bound max: the chunks wholly between
	// the first and the last max/2 bytes are deleted as it grows. Chunks
	// of a run that is not out (sent, received, running), or cancelled
	// without output yet, get Stop. A run that does not exist or is
	// another client's fails the whole call (ErrNotFound, ErrConflict) and
	// nothing is stored.
	AppendOutput(ctx context.Context, clientID int64, chunks []OutputChunk, max int) ([]ChunkResult, error)
	// RunOutputs returns the runs of a job with their output as a reader
	// sees it: the final output a report stored, or, while a run goes on,
	// the chunks streamed so far (head, marker, tail, bounded to max). A
	// run listed in since gets only what follows that offset of its
	// stream (runoutput's Since rules); Run.OutputSize is the stream's
	// length, the next offset. ErrNotFound for an unknown job.
	RunOutputs(ctx context.Context, jobID int64, since map[int64]int64, max int) ([]Run, error)

	// Run maintenance: the time-driven transitions, operator cancellation
	// and failover recovery. Every change is a conditional UPDATE whose
	// WHERE clause holds the source states runstate allows, so several
	// daemons may run the same sweep at once: a run changes at most once,
	// and only the caller that changed it gets it back in its []Change.
	//
	// Sweep applies what is due at o.At, in this order, at most o.Limit
	// runs per kind (0: no limit):
	//   - sent runs whose lease ended (lease_until < At) go back to pending,
	//     or to failed with reason "max attempts" when runstate.Requeue
	//     says the run has used its job's max_attempts;
	//   - received and running runs of a job with a timeout, silent for
	//     longer than the timeout plus o.Grace (no ack, start, report or
	//     renewal by RenewRuns since: updated_at + timeout + Grace < At),
	//     become failed with reason "lost" (a job without a timeout may run
	//     for ever). A received run's timer thus runs from its ack or its
	//     agent's last renewal, a running run's from its start report;
	//   - pending runs whose job's expires_at passed become expired.
	// With o.DryRun the changes are computed and returned but not made.
	Sweep(ctx context.Context, o SweepOptions) ([]Change, error)
	// RequeueServer hands back what a dead daemon had in flight: the runs
	// it sent (state sent, server_id = serverID) that no agent acknowledged
	// go back to pending at once, lease or not (or failed with "max
	// attempts", as in Sweep). Received and running runs stay: the agents
	// hold them and report to any daemon. With dryRun nothing changes.
	RequeueServer(ctx context.Context, serverID int64, at time.Time, dryRun bool) ([]Change, error)
	// CancelJob cancels every non-final run of a job (reason given, e.g.
	// "cancelled by alice") and returns them; runs already final stay.
	// ErrNotFound for an unknown job. Cancelling twice changes nothing the
	// second time and is not an error.
	CancelJob(ctx context.Context, jobID int64, at time.Time, reason string) ([]Change, error)
	// PauseJob pauses (paused) or resumes a job: a paused job hands out no
	// new run, on any daemon; runs already out go on. It says whether the
	// job changed (pausing a paused job does not). ErrNotFound for an
	// unknown job; ErrConflict for pausing a job with no run left to hand
	// out (every run is out or final). Resuming is always allowed.
	PauseJob(ctx context.Context, jobID int64, paused bool) (changed bool, err error)
	// EnforceRollouts halts the rollouts of scope that must halt (their
	// failure budget is spent, or a canary did not succeed: rollout.Spec's
	// HaltReason), each in a transaction that locks the job against
	// concurrent claims: the job records when and why, its pending runs
	// become skipped with that reason, and an audit record "rollout.halt"
	// is written with it. A job halted before has the runs that came back
	// to pending since (an expired lease) skipped too. It returns the
	// halts it made; a job another daemon halted first is not among them.
	// Jobs without a rollout are ignored.
	EnforceRollouts(ctx context.Context, scope RolloutScope, at time.Time) ([]Halt, error)
	// RolloutWake lists the active daemon-mode clients to push so that the
	// pending runs of jobIDs that may go out now are claimed: for a gated
	// job, the clients of as many of its next runs as it has free slots
	// (canaries first while they run); for any other job, the clients of
	// all its pending runs. Paused and halted jobs have none. A nil
	// jobIDs means every gated job whose runs are not all final.
	RolloutWake(ctx context.Context, jobIDs []int64) ([]int64, error)
	// CancelledRuns lists the ids of clientID's runs that were cancelled at
	// or after since while the agent may hold them (they had been sent), so
	// the agent can kill or drop them; oldest first.
	CancelledRuns(ctx context.Context, clientID int64, since time.Time) ([]int64, error)

	// Access control data, loaded as one snapshot for in-memory decisions.
	Policy(ctx context.Context) (PolicyData, error)

	// Servers (daemons) registry.
	RegisterServer(ctx context.Context, s ServerInfo) (ServerInfo, error)
	HeartbeatServer(ctx context.Context, id int64, at time.Time) error
	ListServers(ctx context.Context) ([]ServerInfo, error)

	// Audit trail of operations.
	RecordOperation(ctx context.Context, op AuditEntry) error
	ListOperations(ctx context.Context, f AuditFilter) ([]AuditEntry, error)

	// Maintenance: the db.* operations (docs/protocol.md, "The gate and the blacklist"). The server runs them as
	// gate modifiers, so no other operation of the server runs meanwhile;
	// they are nevertheless atomic on their own, because the CLI's --offline
	// mode calls them without a server, and an agent's transaction or a
	// second daemon must never see half a restore or half a reset.
	//
	// Backup writes a consistent copy of the whole database, taken online
	// (writes may go on meanwhile; the copy is one point in time), into a
	// new file at path, on the host where the store runs. The copy is a
	// database the same driver opens as is, and what Restore takes.
	// ErrConflict when path exists (a backup never overwrites anything);
	// ErrNotFound when its directory does not exist. A failed backup leaves
	// no file behind.
	Backup(ctx context.Context, path string) error
	// Restore replaces the entire contents of the database (every row of
	// every table, the audit trail and the servers registry included) with
	// those of a file Backup wrote, atomically: afterwards the database
	// holds exactly the backed-up rows, or on any error exactly what it held
	// before. The file must have the schema version of this database
	// (ErrInvalid naming both versions otherwise: restore with the binary
	// that made it, or migrate the copy first); a file that does not exist
	// is ErrNotFound, one that is not a scirectl database ErrInvalid. Tokens
	// and the admin user are those of the backup: callers re-check the
	// admin token afterwards.
	Restore(ctx context.Context, path string) error
	// Reset deletes every row of every table in one transaction, keeping
	// the schema and its migration version: an empty store, as on first
	// start, without the admin user (callers recreate it). The id
	// sequences are kept too: no id handed out before a reset is handed
	// out again after it (audit copies, scripts and agents outside the
	// database may still hold the old ones).
	//
	// Restore likewise never moves a sequence back: afterwards each is past
	// both the highest id it had handed out before and the backup's.
	Reset(ctx context.Context) error
	// SchemaVersion is the migration version the database is at, and
	// whether a migration to it failed half-way (dirty).
	SchemaVersion(ctx context.Context) (version uint, dirty bool, err error)
	// LatestVersion is the newest schema version the driver's embedded
	// migrations reach: what opening the store migrates to (db migrate
	// compares the two).
	LatestVersion() uint

	// DueNotBefore returns the active daemon-mode clients with a pending
	// run whose not_before is in (after, until], and the earliest
	// not_before after until among such runs (zero when there is none):
	// the server pushes those clients agent.pollNow when the time comes.
	DueNotBefore(ctx context.Context, after, until time.Time) (clientIDs []int64, next time.Time, err error)

	// RunCounts counts the runs by state, and ClientCounts the clients by
	// status and the active ones last seen at or after seenSince, each in
	// one query (the /metrics gauges).
	RunCounts(ctx context.Context) (map[runstate.State]int, error)
	ClientCounts(ctx context.Context, seenSince time.Time) (byStatus map[ClientStatus]int, seen int, err error)

	// ClusterLock is the cluster-wide side of the gate for a database
	// several daemons share (PostgreSQL): a modifier on one daemon then
	// excludes every operation on all of them. Nil for a store that is
	// alone on its database (SQLite), where the process's gate suffices.
	ClusterLock() gate.ClusterLock

	// Ready reports whether the database answers and its schema is current.
	Ready(ctx context.Context) error
	Close() error
}

// ClientStatus is the enrollment state of a client.
type ClientStatus string

// Enrollment states of a client (docs/protocol.md, "Authentication").
const (
	ClientPending  ClientStatus = "pending"
	ClientActive   ClientStatus = "active"
	ClientRejected ClientStatus = "rejected"
	ClientRevoked  ClientStatus = "revoked"
)

// clientTransitions lists from which statuses each status may be reached.
var clientTransitions = map[ClientStatus][]ClientStatus{
	ClientActive:   {ClientPending},
	ClientRejected: {ClientPending},
	ClientRevoked:  {ClientActive},
}

// ClientStatusFrom returns the statuses a client may move to `to` from.
func ClientStatusFrom(to ClientStatus) []ClientStatus { return clientTransitions[to] }

// Agent modes.
const (
	ModePoll   = "poll"
	ModeDaemon = "daemon"
)

// ClientRegistration is what an agent tells about itself in agent.register.
type ClientRegistration struct {
	Fingerprint string
	Name        string
	Hostname    string
	OS          string
	Arch        string
	Version     string
	Mode        string
	CallbackURL string
	At          time.Time
	// Facts, when not nil, replace the facts stored for the client, with
	// FactsHash (client/facts Facts.Hash); nil keeps them (an agent that
	// sends none).
	Facts     map[string]string
	FactsHash string
}

// Client is a managed machine.
type Client struct {
	ID           int64
	Fingerprint  string
	Name         string
	Status       ClientStatus
	Hostname     string
	OS           string
	Arch         string
	Version      string
	Mode         string
	CallbackURL  string
	RegisteredAt time.Time
	LastSeen     time.Time
	// Facts are what its agent says about the machine, FactsHash their
	// hash; Labels what operators say about it. Never nil when read.
	Facts     map[string]string
	FactsHash string
	Labels    map[string]string
}

// ClientTraits is what choosing machines reads of a client: a selector
// its labels and facts (never nil when read), a glob its name.
type ClientTraits struct {
	ID            int64
	Name          string
	Status        ClientStatus
	Labels, Facts map[string]string
}

// ClientFilter narrows ListClients; zero values match everything.
type ClientFilter struct {
	Status ClientStatus
	Name   string
	// IDs, when not nil, keeps the clients of these ids (none for an empty
	// list). A long list is read in parts, each its own statement: the
	// rows need not be of one instant.
	IDs []int64
}

// User is an operator.
type User struct {
	ID        int64
	Name      string
	CreatedAt time.Time
}

// Token is a bearer token's metadata; the secret itself is never stored.
type Token struct {
	ID        int64
	UserID    int64
	Name      string
	Hash      []byte
	CreatedAt time.Time
	Revoked   bool
}

// NewJob is a job as submitted, targets already resolved to client ids.
type NewJob struct {
	Name        string
	Permission  string
	Interpreter string
	Script      string
	Priority    int
	SubmittedBy string
	NotBefore   time.Time // zero: at once
	ExpiresAt   time.Time // zero: never
	Timeout     time.Duration
	MaxAttempts int
	Targets     []string // as the operator wrote them, for display
	// ClientIDs are the targets in the order given: the first
	// Rollout.Canary of them are the canaries.
	ClientIDs []int64
	CreatedAt time.Time
	// Rollout is the job's rollout, its limits resolved against its
	// number of runs (the zero Spec is read as no rollout, 100%).
	Rollout rollout.Spec
	RerunOf int64 // the job this one reruns, 0 if none
	// IdempotencyKey, when set, makes the job the submitter's only one
	// with that key for IdempotencyWindow: a second submit returns the
	// first job, marked Duplicate, and stores nothing.
	IdempotencyKey string
}

// IdempotencyWindow is how long an idempotency key names its job.
const IdempotencyWindow = 24 * time.Hour

// Job is a logical job with a summary of its runs.
type Job struct {
	ID          int64
	Name        string
	Permission  string
	Interpreter string
	Script      string
	Priority    int
	SubmittedBy string
	CreatedAt   time.Time
	NotBefore   time.Time
	ExpiresAt   time.Time
	Timeout     time.Duration
	MaxAttempts int
	Targets     []string
	Counts      map[runstate.State]int
	// The rollout: its limits, whether an operator paused it, when and
	// why it halted (zero, "": it did not), and where its canaries stand
	// (CanaryPhase; "" without canaries).
	Rollout     rollout.Spec
	Paused      bool
	HaltedAt    time.Time
	HaltReason  string
	CanaryPhase rollout.CanaryPhase
	RerunOf     int64
	// Duplicate marks the job SubmitJobs returned for a submit whose
	// idempotency key named it: nothing was stored.
	Duplicate bool
}

// Status is the job's status derived from its runs and its success
// threshold.
func (j Job) Status() string { return runstate.JobStatusAt(j.Counts, j.Rollout.SuccessThreshold) }

// Halted reports whether the job's rollout halted.
func (j Job) Halted() bool { return !j.HaltedAt.IsZero() }

// JobFilter narrows ListJobs; zero values match everything.
type JobFilter struct {
	SubmittedBy string
	Limit       int // 0: driver default (100)
	BeforeID    int64
}

// Run is one job on one client: the unit of dispatch.
type Run struct {
	ID              int64
	JobID           int64
	ClientID        int64
	ClientName      string
	State           runstate.State
	Canary          bool // one of its job's canaries
	Gated           bool // its job is gated (rollout.Spec.Gated): dispatch counts its runs
	Attempts        int
	ExitCode        *int
	Reason          string
	ServerID        int64
	CreatedAt       time.Time
	SentAt          time.Time
	LeaseUntil      time.Time
	AckedAt         time.Time
	StartedAt       time.Time
	FinishedAt      time.Time
	UpdatedAt       time.Time
	Output          string
	OutputTruncated bool
	// OutputOmitted is how many bytes the output's marker line stands
	// for, and OutputSize how long the run's output stream is: the
	// chunks streamed, or (RunOutputs, once final) the final output's
	// head, omitted bytes and tail.
	OutputOmitted int64
	OutputSize    int64
}

// OutputChunk is a piece of a running job's output (agent.output).
type OutputChunk struct {
	RunID  int64
	Offset int64
	Data   string
}

// ChunkResult says what became of one chunk (AppendOutput).
type ChunkResult struct {
	RunID    int64
	Offset   int64 // the stream's length now: the next chunk starts here
	Accepted bool  // stored, or had already
	Stop     bool  // no more chunks for this run
	Note     string
}

// Claim asks for work for one client.
type Claim struct {
	ClientID int64
	Max      int
	At       time.Time
	Lease    time.Duration // how long a sent run may stay unacknowledged
	ServerID int64
	// Expected says the caller was just told there is work for it (woken
	// in agent.getJobs' wait): the store goes straight to its write,
	// without the read that spares an idle poll the writer. Correct
	// either way; only the cost differs.
	Expected bool
	// Decide is asked for every candidate before it is sent; a refusal marks
	// the run denied with the returned reason. Nil allows everything.
	Decide func(job Job, clientID int64) (allow bool, reason string)
}

// Dispatch is a run handed to an agent, with the job it belongs to.
type Dispatch struct {
	Run Run
	Job Job
}

// AckResult says what an ackJobs call did. Acknowledged counts runs now
// received by the caller, including repeats of an earlier ack; Stale lists
// runs of the caller that can no longer be acknowledged (their lease expired
// and they went back to pending, or an operator cancelled them).
type AckResult struct {
	Acknowledged int
	Stale        []int64
}

// Report is an agent's status for one run.
type Report struct {
	RunID     int64
	State     runstate.State
	ExitCode  *int
	Reason    string
	StartedAt time.Time
	Finished  time.Time
	Output    string
	Truncated bool
}

// ReportResult says what became of one report. Accepted reports may be
// dropped by the agent; Note explains a report accepted without a change
// (a retry, or a run that was already final).
type ReportResult struct {
	RunID    int64
	Accepted bool
	Note     string
}

// RenewResult says what a RenewRuns call did.
type RenewResult struct {
	Renewed int     // received runs whose loss timer restarted
	Lost    []int64 // given runs of the caller already declared lost, ascending
}

// HeldRun is a run an agent says it holds, as a store finds it (RenewRuns).
type HeldRun struct {
	ID     int64
	State  runstate.State
	Reason string
}

// SortHeld splits the runs an agent holds into those RenewRuns renews and
// those it reports lost (ascending ids), the rule both drivers share.
func SortHeld(held []HeldRun) (renew, lost []int64) {
	for _, h := range held {
		switch {
		case slices.Contains(runstate.From(runstate.Renew), h.State):
			renew = append(renew, h.ID)
		case h.State == runstate.Failed && h.Reason == ReasonLost:
			lost = append(lost, h.ID)
		}
	}
	slices.Sort(renew)
	slices.Sort(lost)
	return renew, lost
}

// RolloutScope names the rollouts EnforceRollouts looks at: the jobs of
// JobIDs and those of the runs RunIDs; both empty, every gated job whose
// runs are not all final.
type RolloutScope struct {
	JobIDs []int64
	RunIDs []int64
}

// Halt is a rollout EnforceRollouts halted.
type Halt struct {
	JobID   int64
	Reason  string // e.g. "failure budget exceeded: 3 of 40 failed"
	Skipped int    // pending runs that became skipped
	At      time.Time
}

// ReasonHaltedPrefix starts the reason of a run a halt skipped ("job
// halted: " and the job's halt reason).
const ReasonHaltedPrefix = "job halted: "

// SweepOptions drive Store.Sweep.
type SweepOptions struct {
	At     time.Time
	Grace  time.Duration // added to a job's timeout before a silent run is lost
	Limit  int           // at most this many runs per kind of change; 0 = all
	DryRun bool
}

// Change is one run moved by a maintenance service or an operator.
type Change struct {
	RunID    int64
	JobID    int64
	ClientID int64
	ServerID int64 // the daemon that had sent it, 0 if none
	From     runstate.State
	To       runstate.State
	Reason   string
	Attempts int
}

// Reasons the server itself gives runs it moves.
const (
	ReasonMaxAttempts = "max attempts"
	ReasonLost        = "lost"
	ReasonExpired     = "expired"
)

// ServerInfo is a serve daemon registered in the database.
type ServerInfo struct {
	ID          int64
	Address     string
	Hostname    string
	Version     string
	StartedAt   time.Time
	HeartbeatAt time.Time
}

// AuditEntry is one entry of the audit trail: an operation, who did it,
// when, and how it ended.
type AuditEntry struct {
	ID       int64
	At       time.Time
	ServerID int64
	Actor    string // user name or "client:<id>"
	Name     string // operation name, e.g. "job.submit"
	Target   string
	Outcome  string // "ok", or the fault text
	Detail   string
}

// AuditFilter narrows ListOperations (newest first); zero values match
// everything.
type AuditFilter struct {
	Actor string
	// Name is an exact operation name, or a prefix ending in "*" ("acl.*");
	// only a trailing "*" is a wildcard.
	Name  string
	Since time.Time // entries at or after this time
	// Outcome is "ok"; "error" for every entry whose outcome is not ok
	// (denials included); any other value matches the outcome exactly
	// (e.g. "denied").
	Outcome  string
	BeforeID int64 // paging: entries with a smaller id
	Limit    int   // 0: driver default (100)
}

// ACL rule subjects and targets.
const (
	KindUser        = "user"
	KindUserGroup   = "user-group"
	KindClient      = "client"
	KindClientGroup = "client-group"
	KindAny         = "*"
)

// ACLRule is one row of the access control list.
type ACLRule struct {
	ID          int64
	SubjectKind string
	Subject     string // user or user-group name; "" for *
	Permission  string // or "*"
	TargetKind  string
	Target      string // client name (display) or client-group name; "" for *
	Allow       bool
	Active      bool
	Note        string
	CreatedBy   string
	CreatedAt   time.Time
	// TargetID is the client a KindClient rule names, and all it matches:
	// a later client with the same name, or (ids are never reused) any
	// other client, is not matched. 0 for other kinds, and for a rule that
	// schema version 2 could not resolve (it matches nothing).
	TargetID int64
}

// Group is a named set of users or clients, possibly nesting other groups
// of the same kind.
type Group struct {
	ID        int64
	Kind      string // KindUserGroup or KindClientGroup
	Name      string
	Note      string
	CreatedAt time.Time
	// Selector makes a client group dynamic: its members are the clients
	// it matches when the group is used. ByFacts: it names a fact.
	Selector string
	ByFacts  bool
	// Direct members: user names for a user group, client ids for a client
	// group (with their names in MemberNames, same order); Children are the
	// names of directly nested groups.
	Users       []string
	ClientIDs   []int64
	MemberNames []string
	Children    []string
}

// Member is one member of a group: a user (by name), a client (by id), or
// a nested group of the same kind (by name). Exactly one field is set.
type Member struct {
	User     string
	ClientID int64
	Group    string
}

// String names the member for messages.
func (m Member) String() string {
	switch {
	case m.User != "":
		return "user " + m.User
	case m.ClientID != 0:
		return fmt.Sprintf("client %d", m.ClientID)
	}
	return "group " + m.Group
}

// PolicyData is a snapshot of everything an ACL decision needs.
type PolicyData struct {
	Rules []ACLRule
	// UserGroups maps a user-group name to its direct member users and
	// its direct child groups; ClientGroups the same for clients (by id).
	UserGroupUsers    map[string][]string
	UserGroupChildren map[string][]string
	ClientGroupIDs    map[string][]int64
	ClientGroupChild  map[string][]string
	// ClientGroupSel maps each dynamic client group to its selector: its
	// members are the clients it matches (package selector).
	ClientGroupSel map[string]string
}

// Driver opens a Store for a URL of its scheme.
type Driver interface {
	Open(ctx context.Context, u *url.URL) (Store, error)
}

var (
	driversMu sync.RWMutex
	drivers   = map[string]Driver{}
)

// Register makes a driver available under a URL scheme. It panics on a
// duplicate, as database/sql does, because that is a programming error.
func Register(scheme string, d Driver) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if _, dup := drivers[scheme]; dup {
		panic("db: Register called twice for scheme " + scheme)
	}
	drivers[scheme] = d
}

// Open opens the store named by rawURL (sqlite://PATH, postgres://…) and
// brings its schema up to date.
func Open(ctx context.Context, rawURL string) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	driversMu.RLock()
	d, ok := drivers[u.Scheme]
	driversMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("database URL %q: unknown scheme %q (known: %s)", Redact(rawURL), u.Scheme, strings.Join(Schemes(), ", "))
	}
	return d.Open(ctx, u)
}

// Schemes lists the registered URL schemes.
func Schemes() []string {
	driversMu.RLock()
	defer driversMu.RUnlock()
	out := make([]string, 0, len(drivers))
	for s := range drivers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Redact hides the password of a database URL so it can be logged.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	return u.Redacted()
}
