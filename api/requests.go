package api

import "time"

// The request structs below are the struct params of the operator calls.
// Their xmlrpc tags are the member names the server's handlers accept; a
// member tagged omitempty is left out when unset, as the server's default
// applies then. Members without omitempty are always sent.

// SubmitRequest is job.submit's param: the job.
type SubmitRequest struct {
	Script      string    `xmlrpc:"script"`
	Targets     []string  `xmlrpc:"targets"` // client names, ids or fingerprints
	Groups      []string  `xmlrpc:"groups"`  // client groups, expanded at submit
	Interpreter string    `xmlrpc:"interpreter"`
	Name        string    `xmlrpc:"name,omitempty"` // default: the script's first line
	Priority    int       `xmlrpc:"priority"`
	Timeout     int       `xmlrpc:"timeout"` // seconds, 0 = none
	Permission  string    `xmlrpc:"permission"`
	MaxAttempts int       `xmlrpc:"max_attempts"` // 0 = no limit
	NotBefore   time.Time `xmlrpc:"not_before,omitempty"`
	ExpiresAt   time.Time `xmlrpc:"expires_at,omitempty"`
	// The rollout (docs/protocol.md, "Rollouts"). MaxParallel and
	// MaxFailures are "N" or "P%" (the server also takes an int N);
	// SuccessThreshold is "P%" (or an int P). Unset: no limit, no budget,
	// no canary, 100%.
	MaxParallel      string `xmlrpc:"max_parallel,omitempty"`
	MaxFailures      string `xmlrpc:"max_failures,omitempty"`
	Canary           int    `xmlrpc:"canary,omitempty"`
	SuccessThreshold string `xmlrpc:"success_threshold,omitempty"`
	// Selectors add the active clients any of them matches to the
	// targets, as they are now (package selector's syntax).
	Selectors []string `xmlrpc:"selectors,omitempty"`
	// IdempotencyKey makes a retried submit safe: the same key from the
	// same user within 24 hours returns the first job (Duplicate) and
	// creates nothing.
	IdempotencyKey string `xmlrpc:"idempotency_key,omitempty"`
}

// RerunRequest is job.rerun's options (its second param).
type RerunRequest struct {
	// Failed: only the targets whose runs did not succeed.
	Failed bool `xmlrpc:"failed"`
}

// JobListRequest is job.list's filter.
type JobListRequest struct {
	Limit       int    `xmlrpc:"limit"`
	Before      string `xmlrpc:"before,omitempty"` // only jobs older than this id
	SubmittedBy string `xmlrpc:"submitted_by,omitempty"`
}

// ClientListRequest is client.list's filter.
type ClientListRequest struct {
	Status string `xmlrpc:"status,omitempty"` // pending, active, rejected or revoked
	// Selectors keep the clients any of them matches (package selector's
	// syntax; fact.KEY names a fact).
	Selectors []string `xmlrpc:"selectors,omitempty"`
}

// LabelRequest is client.label's second param: labels to set and keys to
// remove (kubectl's KEY=VALUE and KEY-).
type LabelRequest struct {
	Set    map[string]string `xmlrpc:"set,omitempty"`
	Remove []string          `xmlrpc:"remove,omitempty"`
}

// ACLAddRequest is acl.add's param: the rule.
type ACLAddRequest struct {
	Subject    string `xmlrpc:"subject"`
	Permission string `xmlrpc:"permission"`
	Target     string `xmlrpc:"target"`
	Action     string `xmlrpc:"action"` // "allow" or "deny"
	Note       string `xmlrpc:"note"`
	Active     bool   `xmlrpc:"active"`
}

// AuditListRequest is audit.list's filter.
type AuditListRequest struct {
	Limit     int       `xmlrpc:"limit"`
	Actor     string    `xmlrpc:"actor,omitempty"`
	Operation string    `xmlrpc:"operation,omitempty"` // a name or a prefix such as acl.*
	Outcome   string    `xmlrpc:"outcome,omitempty"`
	Before    string    `xmlrpc:"before,omitempty"` // only entries older than this id
	Since     time.Time `xmlrpc:"since,omitempty"`
}

// UserAddRequest is user.add's options (its second param).
type UserAddRequest struct {
	TokenName string `xmlrpc:"token_name,omitempty"` // default: token
	NoToken   bool   `xmlrpc:"no_token"`
}
