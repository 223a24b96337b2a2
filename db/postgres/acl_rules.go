package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db"
)

const (
	ruleCols = `id, subject_kind, subject, permission, target_kind, target, allow, active, note, created_by, created_at`
	// maxPermissionLen bounds a permission name, in bytes.
	maxPermissionLen = 100
	// maxTargetLen bounds a client name or id in a rule (a DNS name is at
	// most 253 bytes).
	maxTargetLen = 255
)

func scanRule(row pgx.Row) (db.ACLRule, error) {
	var r db.ACLRule
	var created int64
	err := row.Scan(&r.ID, &r.SubjectKind, &r.Subject, &r.Permission, &r.TargetKind, &r.Target,
		&r.Allow, &r.Active, &r.Note, &r.CreatedBy, &created)
	r.CreatedAt = ti(created)
	return r, err
}

// ruleIDs lists the ids of the rules matching a condition (a constant SQL
// fragment with one parameter, $1).
func ruleIDs(ctx context.Context, q queryer, cond string, arg any) ([]int64, error) {
	var ids []int64
	err := eachRow(ctx, q, `SELECT id FROM acl_rules WHERE `+cond+` ORDER BY id`, []any{arg}, func(rows pgx.Rows) error {
		var id int64
		err := rows.Scan(&id)
		ids = append(ids, id)
		return err
	})
	return ids, err
}

// ruleList names rule ids for a message: "rule 3", "rules 3, 5".
func ruleList(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	if len(ids) == 1 {
		return "rule " + s[0]
	}
	return "rules " + strings.Join(s, ", ")
}

func pronoun(ids []int64) string {
	if len(ids) == 1 {
		return "it"
	}
	return "them"
}

// checkRule validates what can be checked without the database (the
// SQLite driver's rules).
func checkRule(r db.ACLRule) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf(format+": %w", append(a, db.ErrInvalid)...)
	}
	switch r.SubjectKind {
	case db.KindUser, db.KindUserGroup:
		if err := checkName("subject "+r.SubjectKind, r.Subject); err != nil {
			return err
		}
	case db.KindAny:
		if r.Subject != "" {
			return bad("subject %q given with subject kind *: leave it empty", r.Subject)
		}
	default:
		return bad("subject kind %q: want %s, %s or *", r.SubjectKind, db.KindUser, db.KindUserGroup)
	}
	switch r.TargetKind {
	case db.KindClientGroup:
		if err := checkName("target "+r.TargetKind, r.Target); err != nil {
			return err
		}
	case db.KindClient:
		switch {
		case r.Target == "":
			return bad("target client name is empty")
		case len(r.Target) > maxTargetLen:
			return bad("target client name is %d bytes, at most %d", len(r.Target), maxTargetLen)
		case !utf8.ValidString(r.Target) || strings.IndexFunc(r.Target, unicode.IsControl) >= 0:
			return bad("target client name %q is not valid UTF-8 or contains a control character", r.Target)
		}
	case db.KindAny:
		if r.Target != "" {
			return bad("target %q given with target kind *: leave it empty", r.Target)
		}
	default:
		return bad("target kind %q: want %s, %s or *", r.TargetKind, db.KindClient, db.KindClientGroup)
	}
	switch p := r.Permission; {
	case p == "":
		return bad("permission is empty (use * for every permission)")
	case len(p) > maxPermissionLen:
		return bad("permission is %d bytes, at most %d", len(p), maxPermissionLen)
	case !utf8.ValidString(p) || strings.IndexFunc(p, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }) >= 0:
		return bad("permission %q: no spaces or control characters allowed", p)
	}
	if !utf8.ValidString(r.Note) || !utf8.ValidString(r.CreatedBy) {
		return bad("note or creator is not valid UTF-8")
	}
	return nil
}

// AddACLRule validates and stores a rule. A subject user, user group or
// target client group must exist (ErrNotFound otherwise); a target client
// may name a machine that is not enrolled yet. The rows it names are
// share-locked until the rule is in, so a concurrent delete of the user or
// group either sees the rule or is seen to have happened first.
func (s *Store) AddACLRule(ctx context.Context, r db.ACLRule) (db.ACLRule, error) {
	if err := checkRule(r); err != nil {
		return db.ACLRule{}, fmt.Errorf("add ACL rule: %w", err)
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	r.CreatedAt = r.CreatedAt.UTC()
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		switch r.SubjectKind {
		case db.KindUser:
			var id int64
			err = tx.QueryRow(ctx, `SELECT id FROM users WHERE name = $1 FOR SHARE`, r.Subject).Scan(&id)
			if noRows(err) {
				err = notFound("subject user", strconv.Quote(r.Subject))
			}
		case db.KindUserGroup:
			_, err = groupID(ctx, tx, userGroupTables, r.Subject, "FOR SHARE")
		}
		if err != nil {
			return err
		}
		if r.TargetKind == db.KindClientGroup {
			if _, err := groupID(ctx, tx, clientGroupTables, r.Target, "FOR SHARE"); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, `
			INSERT INTO acl_rules (subject_kind, subject, permission, target_kind, target, allow, active, note, created_by, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
			r.SubjectKind, r.Subject, r.Permission, r.TargetKind, r.Target, r.Allow, r.Active, r.Note, r.CreatedBy, r.CreatedAt.UnixNano()).
			Scan(&r.ID)
	})
	if err != nil {
		return db.ACLRule{}, fmt.Errorf("add ACL rule: %w", classify(err))
	}
	return r, nil
}

// RemoveACLRule deletes a rule and returns it as it was.
func (s *Store) RemoveACLRule(ctx context.Context, id int64) (db.ACLRule, error) {
	r, err := scanRule(s.pool.QueryRow(ctx, `DELETE FROM acl_rules WHERE id = $1 RETURNING `+ruleCols, id))
	if noRows(err) {
		return db.ACLRule{}, fmt.Errorf("remove ACL rule: %w", notFound("ACL rule", id))
	} else if err != nil {
		return db.ACLRule{}, fmt.Errorf("remove ACL rule: %w", err)
	}
	return r, nil
}

// SetACLRuleActive switches a rule on or off and returns it as it is now.
func (s *Store) SetACLRuleActive(ctx context.Context, id int64, active bool) (db.ACLRule, error) {
	r, err := scanRule(s.pool.QueryRow(ctx, `UPDATE acl_rules SET active = $1 WHERE id = $2 RETURNING `+ruleCols, active, id))
	if noRows(err) {
		return db.ACLRule{}, fmt.Errorf("set ACL rule active: %w", notFound("ACL rule", id))
	} else if err != nil {
		return db.ACLRule{}, fmt.Errorf("set ACL rule active: %w", err)
	}
	return r, nil
}

// ListACLRules lists every rule, active or not, by id (the order in which
// they were added).
func (s *Store) ListACLRules(ctx context.Context) ([]db.ACLRule, error) {
	rules, err := listRules(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("list ACL rules: %w", err)
	}
	return rules, nil
}

func listRules(ctx context.Context, q queryer) ([]db.ACLRule, error) {
	var out []db.ACLRule
	err := eachRow(ctx, q, `SELECT `+ruleCols+` FROM acl_rules ORDER BY id`, nil, func(rows pgx.Rows) error {
		r, err := scanRule(rows)
		out = append(out, r)
		return err
	})
	return out, err
}
