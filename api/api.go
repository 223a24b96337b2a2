// Package api is the wire contract: method names, the shapes of requests
// and results, limits and headers. Nothing else defines them. For the
// operator API: the server encodes them
// as XML-RPC structs, the CLI decodes them with the same tags and prints
// them as JSON with the same snake_case names, so a field has one name
// everywhere (docs/protocol.md lists them). Ids are decimal strings on the
// wire (XML-RPC's int is 32-bit) and in JSON (scripts keep them exact).
package api

import "time"

// SubmitResult is what job.submit returns.
type SubmitResult struct {
	ID   string `xmlrpc:"id" json:"id"`
	Runs int    `xmlrpc:"runs" json:"runs"`
	// RerunOf is the job a job.rerun repeated.
	RerunOf string `xmlrpc:"rerun_of,omitempty" json:"rerun_of,omitempty"`
	// Duplicate: the idempotency key named a job submitted before; this is
	// that job, and nothing was created.
	Duplicate bool `xmlrpc:"duplicate,omitempty" json:"duplicate,omitempty"`
}

// PauseResult is what job.pause and job.resume return.
type PauseResult struct {
	JobID  string `xmlrpc:"job_id" json:"job_id"`
	Paused bool   `xmlrpc:"paused" json:"paused"`
	// Changed is false when the job already was as asked.
	Changed bool `xmlrpc:"changed" json:"changed"`
}

// Job is a job as job.get and job.list show it.
type Job struct {
	ID          string         `xmlrpc:"id" json:"id"`
	Name        string         `xmlrpc:"name" json:"name"`
	Status      string         `xmlrpc:"status" json:"status"`
	Permission  string         `xmlrpc:"permission" json:"permission"`
	Interpreter string         `xmlrpc:"interpreter" json:"interpreter"`
	Script      string         `xmlrpc:"script,omitempty" json:"script,omitempty"`
	Priority    int            `xmlrpc:"priority" json:"priority"`
	SubmittedBy string         `xmlrpc:"submitted_by" json:"submitted_by"`
	CreatedAt   time.Time      `xmlrpc:"created_at" json:"created_at"`
	NotBefore   *time.Time     `xmlrpc:"not_before,omitempty" json:"not_before,omitempty"`
	ExpiresAt   *time.Time     `xmlrpc:"expires_at,omitempty" json:"expires_at,omitempty"`
	Timeout     int            `xmlrpc:"timeout" json:"timeout"` // seconds, 0 = none
	MaxAttempts int            `xmlrpc:"max_attempts" json:"max_attempts"`
	Targets     []string       `xmlrpc:"targets" json:"targets"`
	Counts      map[string]int `xmlrpc:"counts" json:"counts"` // runs by state
	// The rollout (docs/protocol.md, "Rollouts"): limits as resolved
	// against the job's runs when it was submitted. MaxParallel absent
	// (JSON null): no limit; MaxFailures absent: no budget.
	MaxParallel      *int   `xmlrpc:"max_parallel,omitempty" json:"max_parallel"`
	MaxFailures      *int   `xmlrpc:"max_failures,omitempty" json:"max_failures"`
	Canary           int    `xmlrpc:"canary" json:"canary"`
	CanaryPhase      string `xmlrpc:"canary_phase,omitempty" json:"canary_phase,omitempty"` // running, passed or failed
	SuccessThreshold int    `xmlrpc:"success_threshold" json:"success_threshold"`           // percent
	Paused           bool   `xmlrpc:"paused" json:"paused"`
	Halted           bool   `xmlrpc:"halted" json:"halted"`
	HaltReason       string `xmlrpc:"halt_reason,omitempty" json:"halt_reason,omitempty"`
	RerunOf          string `xmlrpc:"rerun_of,omitempty" json:"rerun_of,omitempty"`
	Runs             []Run  `xmlrpc:"runs,omitempty" json:"runs,omitempty"`
}

// Run is one job on one client.
type Run struct {
	ID         string     `xmlrpc:"id" json:"id"`
	JobID      string     `xmlrpc:"job_id" json:"job_id"`
	ClientID   string     `xmlrpc:"client_id" json:"client_id"`
	Client     string     `xmlrpc:"client" json:"client"`
	State      string     `xmlrpc:"state" json:"state"`
	Canary     bool       `xmlrpc:"canary,omitempty" json:"canary,omitempty"`
	ExitCode   *int       `xmlrpc:"exit_code,omitempty" json:"exit_code"`
	Attempts   int        `xmlrpc:"attempts" json:"attempts"`
	Reason     string     `xmlrpc:"reason,omitempty" json:"reason,omitempty"`
	SentAt     *time.Time `xmlrpc:"sent_at,omitempty" json:"sent_at,omitempty"`
	StartedAt  *time.Time `xmlrpc:"started_at,omitempty" json:"started_at,omitempty"`
	FinishedAt *time.Time `xmlrpc:"finished_at,omitempty" json:"finished_at,omitempty"`
}

// Output is one run's captured output (job.output).
type Output struct {
	RunID     string `xmlrpc:"run_id" json:"run_id"`
	Client    string `xmlrpc:"client" json:"client"`
	State     string `xmlrpc:"state" json:"state"`
	ExitCode  *int   `xmlrpc:"exit_code,omitempty" json:"exit_code"`
	Output    string `xmlrpc:"output" json:"output"`
	Truncated bool   `xmlrpc:"truncated" json:"truncated"`
	// OmittedBytes is how many bytes the marker line stands for (0 when
	// nothing was dropped).
	OmittedBytes int `xmlrpc:"omitted_bytes" json:"omitted_bytes"`
	// Size is the length of the whole output stream so far (what was
	// kept and what was omitted): a follower asks for what follows it
	// next (OutputRequest.Offsets). With an offset given, Output holds
	// only what follows that offset.
	Size int `xmlrpc:"size" json:"size"`
}

// OutputRequest is job.output's options (its third param): for a
// follower, the offset of each run it has read up to, by run id; those
// runs' Output is then only what follows (with a marker line for bytes
// no longer kept).
type OutputRequest struct {
	Offsets map[string]int `xmlrpc:"offsets" json:"offsets"`
}

// Client is a managed machine.
type Client struct {
	ID           string     `xmlrpc:"id" json:"id"`
	Name         string     `xmlrpc:"name" json:"name"`
	Fingerprint  string     `xmlrpc:"fingerprint" json:"fingerprint"`
	Status       string     `xmlrpc:"status" json:"status"`
	Hostname     string     `xmlrpc:"hostname" json:"hostname"`
	OS           string     `xmlrpc:"os" json:"os"`
	Arch         string     `xmlrpc:"arch" json:"arch"`
	Version      string     `xmlrpc:"version" json:"version"`
	Mode         string     `xmlrpc:"mode" json:"mode"`
	CallbackURL  string     `xmlrpc:"callback_url,omitempty" json:"callback_url,omitempty"`
	RegisteredAt time.Time  `xmlrpc:"registered_at" json:"registered_at"`
	LastSeen     *time.Time `xmlrpc:"last_seen,omitempty" json:"last_seen,omitempty"`
	// Facts are what the machine says about itself (its agent sends them:
	// docs/protocol.md, "Facts, labels, selectors"); Labels what operators
	// say about it (client.label). Selectors name facts as fact.KEY.
	Facts  map[string]string `xmlrpc:"facts" json:"facts"`
	Labels map[string]string `xmlrpc:"labels" json:"labels"`
	// LastPush is the last agent.pollNow push to a daemon-mode client by
	// the daemon that answers (kept in its memory only: absent after its
	// restart, and each daemon knows only its own pushes).
	LastPush *PushResult `xmlrpc:"last_push,omitempty" json:"last_push,omitempty"`
}

// PushResult is the outcome of a daemon's last agent.pollNow push to a client.
type PushResult struct {
	At       time.Time `xmlrpc:"at" json:"at"`
	Result   string    `xmlrpc:"result" json:"result"` // ok, retrying or failed (given up: the client's polling covers it)
	Error    string    `xmlrpc:"error,omitempty" json:"error,omitempty"`
	Attempts int       `xmlrpc:"attempts" json:"attempts"`
	ServerID string    `xmlrpc:"server_id" json:"server_id"` // the daemon that pushed
}

// User is an operator account as user.list shows it.
type User struct {
	Name      string    `xmlrpc:"name" json:"name"`
	CreatedAt time.Time `xmlrpc:"created_at" json:"created_at"`
	Tokens    int       `xmlrpc:"tokens" json:"tokens"` // tokens not revoked
	Groups    []string  `xmlrpc:"groups" json:"groups"` // user groups it belongs to directly
}

// NewToken is what user.add and user.token.create return: the secret is
// shown this once and stored only as a hash.
type NewToken struct {
	ID    string `xmlrpc:"id" json:"id"`
	User  string `xmlrpc:"user" json:"user"`
	Name  string `xmlrpc:"name" json:"name"`
	Token string `xmlrpc:"token" json:"token"`
}

// Token is a token's metadata as user.token.list shows it.
type Token struct {
	ID        string    `xmlrpc:"id" json:"id"`
	User      string    `xmlrpc:"user" json:"user"`
	Name      string    `xmlrpc:"name" json:"name"`
	CreatedAt time.Time `xmlrpc:"created_at" json:"created_at"`
	Revoked   bool      `xmlrpc:"revoked" json:"revoked"`
}

// Group is a user group or a client group.
type Group struct {
	Kind      string    `xmlrpc:"kind" json:"kind"` // "user" or "client"
	Name      string    `xmlrpc:"name" json:"name"`
	Note      string    `xmlrpc:"note" json:"note"`
	CreatedAt time.Time `xmlrpc:"created_at" json:"created_at"`
	Members   []string  `xmlrpc:"members" json:"members"` // user names, or client names for a client group
	ClientIDs []string  `xmlrpc:"client_ids,omitempty" json:"client_ids,omitempty"`
	Groups    []string  `xmlrpc:"groups" json:"groups"` // nested groups
	// Selector makes a client group dynamic: its members are the accepted
	// clients it matches when the group is used (shown: those it matches
	// now).
	Selector string `xmlrpc:"selector,omitempty" json:"selector,omitempty"`
}

// ACLRule is one access rule. Subject is "user:NAME", "group:NAME" or "*";
// Target is "client:NAME" (with TargetID), "group:NAME" or "*".
type ACLRule struct {
	ID         string `xmlrpc:"id" json:"id"`
	Subject    string `xmlrpc:"subject" json:"subject"`
	Permission string `xmlrpc:"permission" json:"permission"`
	Target     string `xmlrpc:"target" json:"target"`
	// TargetID is the id of the client a client:NAME target names (the
	// rule matches it alone); empty for other targets.
	TargetID  string    `xmlrpc:"target_id,omitempty" json:"target_id,omitempty"`
	Action    string    `xmlrpc:"action" json:"action"` // "allow" or "deny"
	Active    bool      `xmlrpc:"active" json:"active"`
	Note      string    `xmlrpc:"note" json:"note"`
	CreatedBy string    `xmlrpc:"created_by" json:"created_by"`
	CreatedAt time.Time `xmlrpc:"created_at" json:"created_at"`
}

// ACLDecision is what acl.check answers.
type ACLDecision struct {
	User       string `xmlrpc:"user" json:"user"`
	Permission string `xmlrpc:"permission" json:"permission"`
	Target     string `xmlrpc:"target" json:"target"`
	Allowed    bool   `xmlrpc:"allowed" json:"allowed"`
	RuleID     string `xmlrpc:"rule_id,omitempty" json:"rule_id,omitempty"` // the rule that decided, if any
	Reason     string `xmlrpc:"reason" json:"reason"`
}

// AuditEntry is one record of the audit trail.
type AuditEntry struct {
	ID       string    `xmlrpc:"id" json:"id"`
	At       time.Time `xmlrpc:"at" json:"at"`
	ServerID string    `xmlrpc:"server_id" json:"server_id"`
	Actor    string    `xmlrpc:"actor" json:"actor"`
	Name     string    `xmlrpc:"operation" json:"operation"`
	Target   string    `xmlrpc:"target" json:"target"`
	Outcome  string    `xmlrpc:"outcome" json:"outcome"`
	Detail   string    `xmlrpc:"detail" json:"detail"`
}

// Op is an operation at the gate, as ops.list shows it.
type Op struct {
	ID    string    `xmlrpc:"id" json:"id"`
	Name  string    `xmlrpc:"name" json:"name"`
	Class string    `xmlrpc:"class" json:"class"` // modifier or non-modifier
	User  string    `xmlrpc:"user" json:"user"`
	Since time.Time `xmlrpc:"since" json:"since"` // started (running) or arrived (waiting)
	State string    `xmlrpc:"state" json:"state"` // running or waiting
}

// OpClass is one row of the operation table (ops.classes).
type OpClass struct {
	Name         string `xmlrpc:"name" json:"name"`
	Class        string `xmlrpc:"class" json:"class"`
	DefaultClass string `xmlrpc:"default_class" json:"default_class"`
	Permission   string `xmlrpc:"permission" json:"permission"` // admin permission needed, if any
}

// BlacklistEntry is one entry of the blacklist in force.
type BlacklistEntry struct {
	Pattern string   `xmlrpc:"pattern" json:"pattern"`
	Line    int      `xmlrpc:"line" json:"line"`       // in the file
	Matches []string `xmlrpc:"matches" json:"matches"` // operations it denies
}

// BlacklistCheck answers blacklist.check.
type BlacklistCheck struct {
	Operation   string `xmlrpc:"operation" json:"operation"`
	Blacklisted bool   `xmlrpc:"blacklisted" json:"blacklisted"`
	Pattern     string `xmlrpc:"pattern,omitempty" json:"pattern,omitempty"`
	Line        int    `xmlrpc:"line,omitempty" json:"line,omitempty"`
}

// CancelResult is what job.cancel returns.
type CancelResult struct {
	JobID     string `xmlrpc:"job_id" json:"job_id"`
	Cancelled int    `xmlrpc:"cancelled" json:"cancelled"` // runs cancelled by this call
}

// ServerInfo is a daemon in the registry, as server.list shows it.
type ServerInfo struct {
	ID          string    `xmlrpc:"id" json:"id"`
	Address     string    `xmlrpc:"address" json:"address"`
	Hostname    string    `xmlrpc:"hostname" json:"hostname"`
	Version     string    `xmlrpc:"version" json:"version"`
	StartedAt   time.Time `xmlrpc:"started_at" json:"started_at"`
	HeartbeatAt time.Time `xmlrpc:"heartbeat_at" json:"heartbeat_at"`
	Alive       bool      `xmlrpc:"alive" json:"alive"`
}

// ServerStatus is what server.status says of the daemon that answers.
type ServerStatus struct {
	ID            string    `xmlrpc:"id" json:"id"`
	Address       string    `xmlrpc:"address" json:"address"`
	Version       string    `xmlrpc:"version" json:"version"`
	GoVersion     string    `xmlrpc:"go_version" json:"go_version"`
	StartedAt     time.Time `xmlrpc:"started_at" json:"started_at"`
	Database      string    `xmlrpc:"database" json:"database"` // URL, password removed
	SchemaVersion int       `xmlrpc:"schema_version" json:"schema_version"`
	Gate          GateStats `xmlrpc:"gate" json:"gate"`
}

// GateStats are the gate's counters since start and its state now.
type GateStats struct {
	RunningReaders int   `xmlrpc:"running_readers" json:"running_readers"`
	Modifier       bool  `xmlrpc:"modifier" json:"modifier"` // a modifier holds the gate now
	Waiting        int   `xmlrpc:"waiting" json:"waiting"`
	Admitted       int64 `xmlrpc:"admitted" json:"admitted"`
	Waited         int64 `xmlrpc:"waited" json:"waited"`
	Busy           int64 `xmlrpc:"busy" json:"busy"`
	Cancelled      int64 `xmlrpc:"cancelled" json:"cancelled"`
}

// DBBackup is what db.backup returns.
type DBBackup struct {
	Path       string `xmlrpc:"path" json:"path"`
	Bytes      int64  `xmlrpc:"bytes" json:"bytes"`
	DurationMS int64  `xmlrpc:"duration_ms" json:"duration_ms"`
}

// DBRestore is what db.restore returns. AdminTokenRenewed says the
// server's admin token file was rewritten, because the restored database
// did not know the token it held.
type DBRestore struct {
	Path              string `xmlrpc:"path" json:"path"`
	SchemaVersion     int    `xmlrpc:"schema_version" json:"schema_version"`
	AdminTokenRenewed bool   `xmlrpc:"admin_token_renewed" json:"admin_token_renewed"`
	AdminTokenFile    string `xmlrpc:"admin_token_file" json:"admin_token_file"`
}

// DBReset is what db.reset returns.
type DBReset struct {
	SchemaVersion  int    `xmlrpc:"schema_version" json:"schema_version"`
	AdminTokenFile string `xmlrpc:"admin_token_file" json:"admin_token_file"`
}

// DBVersion is what db.migrate returns: the schema version the database is
// at, the newest this binary knows, and whether a migration failed half-way.
type DBVersion struct {
	Version int  `xmlrpc:"version" json:"version"`
	Latest  int  `xmlrpc:"latest" json:"latest"`
	Dirty   bool `xmlrpc:"dirty" json:"dirty"`
}

// ResetConfirmation is the word db.reset must be given.
const ResetConfirmation = "reset"

// SelfLockout is the operation whose blacklisting makes the blacklist
// impossible to shrink through the server.
const SelfLockout = "blacklist.remove"

// DefaultListen is the address serve listens on and the CLI calls by default.
const DefaultListen = "127.0.0.1:7443"
