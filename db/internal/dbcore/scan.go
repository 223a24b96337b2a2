package dbcore

// The column lists of the db types and the functions that read them: a
// query selects one of these lists (tables aliased as the list says) and
// hands each row to the matching Scan function.

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/rollout"
)

// ClientCols are the columns ScanClient reads, of the clients table.
const ClientCols = `id, fingerprint, name, status, hostname, os, arch, version, mode, callback_url, registered_at, last_seen,
	facts, facts_hash, labels`

// ScanClient reads a row of ClientCols.
func ScanClient(row Scanner) (db.Client, error) {
	var c db.Client
	var reg, seen int64
	var facts, labels string
	err := row.Scan(&c.ID, &c.Fingerprint, &c.Name, &c.Status, &c.Hostname, &c.OS, &c.Arch, &c.Version,
		&c.Mode, &c.CallbackURL, &reg, &seen, &facts, &c.FactsHash, &labels)
	c.RegisteredAt, c.LastSeen = Time(reg), Time(seen)
	c.Facts, c.Labels = StringMap(facts), StringMap(labels)
	return c, err
}

// StringMap reads a JSON object of strings as stored (facts, labels); a
// damaged one reads as empty, never nil.
func StringMap(s string) map[string]string {
	if m, ok := plainStringMap(s, nil); ok {
		return m
	}
	m := map[string]string{}
	if s != "" && s != "{}" {
		_ = json.Unmarshal([]byte(s), &m)
	}
	return m
}

// plainStringMap reads the JSON objects of strings that need nothing of
// a JSON decoder — no escape, no blank, valid UTF-8, as StringMapColumn
// writes most — the way encoding/json reads them, and much faster: a
// fleet's facts are read whole to choose machines among them. The keys
// and values are parts of s, or what str makes of them when str is not
// nil. Anything else is not ok (json.Unmarshal's).
func plainStringMap(s string, str func(string) string) (map[string]string, bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' || strings.IndexByte(s, '\\') >= 0 || !utf8.ValidString(s) {
		return nil, false
	}
	m := make(map[string]string, strings.Count(s, `":"`))
	if s == "{}" {
		return m, true
	}
	next := func(i int) (string, int, bool) { // the string at s[i], and the index after it
		if i >= len(s) || s[i] != '"' {
			return "", 0, false
		}
		n := strings.IndexByte(s[i+1:], '"')
		if n < 0 {
			return "", 0, false
		}
		v := s[i+1 : i+1+n]
		for j := 0; j < len(v); j++ {
			if v[j] < 0x20 {
				return "", 0, false
			}
		}
		return v, i + n + 2, true
	}
	for i := 1; ; {
		k, j, ok := next(i)
		if !ok || j >= len(s) || s[j] != ':' {
			return nil, false
		}
		v, j, ok := next(j + 1)
		if !ok || j >= len(s) {
			return nil, false
		}
		if str != nil {
			k, v = str(k), str(v)
		}
		m[k] = v
		switch {
		case s[j] == ',':
			i = j + 1
		case j == len(s)-1: // the closing brace
			return m, true
		default:
			return nil, false
		}
	}
}

// StringMapColumn is m as the facts and labels columns store it.
func StringMapColumn(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // keys sorted: the same map, the same text
	return string(b)
}

// JobCols are the columns ScanJob reads, of the jobs table.
const JobCols = `id, name, permission, interpreter, script, priority, submitted_by, targets, created_at,
	not_before, expires_at, timeout_s, max_attempts,
	max_parallel, max_failures, canary, success_threshold, paused, halted_at, halt_reason, COALESCE(rerun_of, 0) AS rerun_of`

// ScanJob reads a row of JobCols, and then into more, the columns a query
// selects after them.
func ScanJob(row Scanner, more ...any) (db.Job, error) {
	var j db.Job
	var targets string
	var created int64
	var nb, ex *int64
	var timeout, maxFailures int64
	var halted *int64
	dest := make([]any, 0, 21+len(more))
	dest = append(dest, &j.ID, &j.Name, &j.Permission, &j.Interpreter, &j.Script, &j.Priority, &j.SubmittedBy,
		&targets, &created, &nb, &ex, &timeout, &j.MaxAttempts,
		&j.Rollout.MaxParallel, &maxFailures, &j.Rollout.Canary, &j.Rollout.SuccessThreshold, &j.Paused, &halted, &j.HaltReason, &j.RerunOf)
	err := row.Scan(append(dest, more...)...)
	if err != nil {
		return j, err
	}
	_ = json.Unmarshal([]byte(targets), &j.Targets)
	j.CreatedAt, j.NotBefore, j.ExpiresAt, j.HaltedAt = Time(created), NullTime(nb), NullTime(ex), NullTime(halted)
	j.Timeout = time.Duration(timeout) * time.Second
	j.Rollout.MaxFailures, j.Rollout.Budgeted = StoredBudget(maxFailures)
	return j, nil
}

// StoredBudget reads the max_failures column: -1 is no budget.
func StoredBudget(v int64) (n int, budgeted bool) {
	if v < 0 {
		return 0, false
	}
	return int(v), true
}

// BudgetColumn is a rollout's failure budget as the max_failures column
// stores it: -1 for none.
func BudgetColumn(s rollout.Spec) int {
	if !s.Budgeted {
		return -1
	}
	return s.MaxFailures
}

// RunCols are the columns ScanRun reads, of runs r joined with clients c.
const RunCols = `r.id, r.job_id, r.client_id, c.name, r.state, r.attempts, r.exit_code, r.reason, COALESCE(r.server_id, 0),
	r.created_at, r.sent_at, r.lease_until, r.acked_at, r.started_at, r.finished_at, r.updated_at, r.output, r.output_truncated, r.canary, r.gated, r.output_size`

// ScanRun reads a row of RunCols.
func ScanRun(row Scanner) (db.Run, error) {
	var r db.Run
	var exit, sent, lease, acked, started, finished *int64
	var created, updated int64
	err := row.Scan(&r.ID, &r.JobID, &r.ClientID, &r.ClientName, &r.State, &r.Attempts, &exit, &r.Reason, &r.ServerID,
		&created, &sent, &lease, &acked, &started, &finished, &updated, &r.Output, &r.OutputTruncated, &r.Canary, &r.Gated, &r.OutputSize)
	if err != nil {
		return r, err
	}
	if exit != nil {
		e := int(*exit)
		r.ExitCode = &e
	}
	r.CreatedAt, r.UpdatedAt = Time(created), Time(updated)
	r.SentAt, r.LeaseUntil, r.AckedAt, r.StartedAt, r.FinishedAt = NullTime(sent), NullTime(lease), NullTime(acked), NullTime(started), NullTime(finished)
	return r, nil
}

// RuleCols are the columns ScanRule reads, of the acl_rules table.
const RuleCols = `id, subject_kind, subject, permission, target_kind, target, allow, active, note, created_by, created_at, COALESCE(target_id, 0)`

// ScanRule reads a row of RuleCols.
func ScanRule(row Scanner) (db.ACLRule, error) {
	var r db.ACLRule
	var created int64
	err := row.Scan(&r.ID, &r.SubjectKind, &r.Subject, &r.Permission, &r.TargetKind, &r.Target,
		&r.Allow, &r.Active, &r.Note, &r.CreatedBy, &created, &r.TargetID)
	r.CreatedAt = Time(created)
	return r, err
}

// ServerCols are the columns ScanServer reads, of the servers table.
const ServerCols = `id, address, hostname, version, started_at, heartbeat_at`

// ScanServer reads a row of ServerCols.
func ScanServer(row Scanner) (db.ServerInfo, error) {
	var si db.ServerInfo
	var st, hb int64
	err := row.Scan(&si.ID, &si.Address, &si.Hostname, &si.Version, &st, &hb)
	si.StartedAt, si.HeartbeatAt = Time(st), Time(hb)
	return si, err
}
