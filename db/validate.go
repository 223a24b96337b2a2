package db

// Validation every driver applies before it touches its database, so that
// SQLite and PostgreSQL refuse exactly the same input with the same words.

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/scirectl/scirectl/jobxml"
)

// MaxNameLen bounds user and group names, in bytes.
const MaxNameLen = 200

const (
	// MaxPermissionLen bounds a permission name, in bytes.
	MaxPermissionLen = 100
	// MaxTargetLen bounds a client name or id in a rule (a DNS name is at
	// most 253 bytes).
	MaxTargetLen = 255
)

// CheckName validates a user or group name: non-empty, valid UTF-8, at
// most MaxNameLen bytes, no control characters. Anything else (quotes, %,
// spaces, SQL) is a legal name and is stored literally.
func CheckName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s name is empty: %w", what, ErrInvalid)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%s name is %d bytes, at most %d: %w", what, len(name), MaxNameLen, ErrInvalid)
	case !utf8.ValidString(name):
		return fmt.Errorf("%s name %q is not valid UTF-8: %w", what, name, ErrInvalid)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%s name %q contains a control character: %w", what, name, ErrInvalid)
	}
	return nil
}

// CheckNewName validates the name of a client, user or group being
// created or registered: CheckName, and not a name that reads as an
// identity: all decimal digits (an id) or 64 hex digits (a certificate
// fingerprint). A reference such as "client:17" or "user:17" is looked up
// as an id first, so a name that looks like one would name the wrong
// object, or a different one later. Existing objects are not renamed;
// only new names are held to this.
func CheckNewName(what, name string) error {
	if err := CheckName(what, name); err != nil {
		return err
	}
	switch {
	case IsDecimal(name):
		return fmt.Errorf("%s name %q is all digits, which reads as an id: use a name with a letter in it: %w", what, name, ErrInvalid)
	case IsFingerprint(name):
		return fmt.Errorf("%s name %q is 64 hex digits, which reads as a certificate fingerprint: %w", what, name, ErrInvalid)
	}
	return nil
}

// IsDecimal reports a non-empty string of ASCII digits only.
func IsDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// IsFingerprint reports 64 hex digits (either case): the form of a SHA-256
// certificate fingerprint.
func IsFingerprint(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// CheckRule validates what can be checked without the database.
func CheckRule(r ACLRule) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf(format+": %w", append(a, ErrInvalid)...)
	}
	switch r.SubjectKind {
	case KindUser, KindUserGroup:
		if err := CheckName("subject "+r.SubjectKind, r.Subject); err != nil {
			return err
		}
	case KindAny:
		if r.Subject != "" {
			return bad("subject %q given with subject kind *: leave it empty", r.Subject)
		}
	default:
		return bad("subject kind %q: want %s, %s or *", r.SubjectKind, KindUser, KindUserGroup)
	}
	switch r.TargetKind {
	case KindClientGroup:
		if err := CheckName("target "+r.TargetKind, r.Target); err != nil {
			return err
		}
	case KindClient:
		// A client is named by id, resolved by the caller when the rule is
		// written; Target is its name, for display, filled in by the store.
		switch {
		case r.TargetID <= 0:
			return bad("target client: no client id (resolve the client's name, id or fingerprint to its id first)")
		case len(r.Target) > MaxTargetLen:
			return bad("target client name is %d bytes, at most %d", len(r.Target), MaxTargetLen)
		case !utf8.ValidString(r.Target) || strings.IndexFunc(r.Target, unicode.IsControl) >= 0:
			return bad("target client name %q is not valid UTF-8 or contains a control character", r.Target)
		}
	case KindAny:
		if r.Target != "" {
			return bad("target %q given with target kind *: leave it empty", r.Target)
		}
	default:
		return bad("target kind %q: want %s, %s or *", r.TargetKind, KindClient, KindClientGroup)
	}
	if r.TargetKind != KindClient && r.TargetID != 0 {
		return bad("target client id %d given with target kind %s", r.TargetID, r.TargetKind)
	}
	switch p := r.Permission; {
	case p == "":
		return bad("permission is empty (use * for every permission)")
	case len(p) > MaxPermissionLen:
		return bad("permission is %d bytes, at most %d", len(p), MaxPermissionLen)
	case !utf8.ValidString(p) || strings.IndexFunc(p, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }) >= 0:
		return bad("permission %q: no spaces or control characters allowed", p)
	}
	if !utf8.ValidString(r.Note) || !utf8.ValidString(r.CreatedBy) {
		return bad("note or creator is not valid UTF-8")
	}
	return nil
}

// CheckMember refuses a member of the wrong sort for the group kind, or a
// Member with other than exactly one field set.
func CheckMember(kind string, m Member) error {
	set := 0
	for _, b := range []bool{m.User != "", m.ClientID != 0, m.Group != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("a member is one user, client or group, got %+v: %w", m, ErrInvalid)
	}
	if kind == KindUserGroup && m.ClientID != 0 {
		return fmt.Errorf("a %s holds users and user groups, not %s: %w", kind, m, ErrInvalid)
	}
	if kind == KindClientGroup && m.User != "" {
		return fmt.Errorf("a %s holds clients and client groups, not %s: %w", kind, m, ErrInvalid)
	}
	if m.ClientID < 0 {
		return fmt.Errorf("%s: bad client id: %w", m, ErrInvalid)
	}
	return nil
}

// NamedByRules is the conflict of deleting what ACL rules still name:
// "user "alice" is named by ACL rules 3, 5: remove them first".
func NamedByRules(what string, ids []int64) error {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	list, them := "rules "+strings.Join(s, ", "), "them"
	if len(ids) == 1 {
		list, them = "rule "+s[0], "it"
	}
	return fmt.Errorf("%s is named by ACL %s: remove %s first: %w", what, list, them, ErrConflict)
}

// LatestMigration reads the highest version off golang-migrate file names
// (NNNN_name.up.sql) in dir of fsys: the version a driver's embedded
// migrations bring a database to. Drivers check it against their
// SchemaVersion constant at start.
func LatestMigration(fsys fs.ReadDirFS, dir string) (uint, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("embedded migrations: %w", err)
	}
	var latest uint64
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil {
			return 0, fmt.Errorf("migration file %s does not start with a version number", e.Name())
		}
		latest = max(latest, v)
	}
	return uint(latest), nil
}

// Normalize checks a job before any driver stores it and fills in the
// defaults: at least one target client, each once (the first mention
// keeps its place: runs get their ids in the order of the targets), the
// creation time (now), the permission (run).
func (nj NewJob) Normalize() (NewJob, error) {
	if len(nj.ClientIDs) == 0 {
		return nj, fmt.Errorf("no target clients: %w", ErrInvalid)
	}
	seen := make(map[int64]bool, len(nj.ClientIDs))
	ids := make([]int64, 0, len(nj.ClientIDs))
	for _, id := range nj.ClientIDs {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	nj.ClientIDs = ids
	// Times are stored as Unix nanoseconds: one past 2262 would wrap
	// around and come back centuries early (a job held to 2263 would run
	// at once). The server refuses them first, naming the field.
	for _, t := range [...]struct {
		name string
		t    time.Time
	}{{"not_before", nj.NotBefore}, {"expires_at", nj.ExpiresAt}} {
		if !t.t.IsZero() {
			if err := jobxml.CheckTime(t.t); err != nil {
				return nj, fmt.Errorf("%s: %v: %w", t.name, err, ErrInvalid)
			}
		}
	}
	if nj.CreatedAt.IsZero() {
		nj.CreatedAt = time.Now().UTC()
	}
	if nj.Permission == "" {
		nj.Permission = "run"
	}
	return nj, nil
}

// SubmitError is the error of a SubmitJobs batch of n jobs that failed on
// job i (from 0), or in a part of the transaction no job owns (i < 0): it
// names the job, so a caller of a batch knows which one to fix.
func SubmitError(n, i int, err error) error {
	switch {
	case n == 1 || i < 0:
		return fmt.Errorf("submit job: %w", err)
	default:
		return fmt.Errorf("submit job %d of %d: %w", i+1, n, err)
	}
}
