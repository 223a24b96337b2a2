package dbcore

// ACL rules: adding one (its references checked and locked) and reading
// them all.

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/scirectl/scirectl/db"
)

// AddACLRule validates and stores a rule. A subject user, user group,
// target client group or target client (by id) must exist (ErrNotFound
// otherwise), and is share-locked until the rule is in, so that a
// concurrent delete of it either sees the rule or is seen to have happened
// first; a client target is stored as its id, with the client's name for
// display.
func AddACLRule(ctx context.Context, s DB, r db.ACLRule) (db.ACLRule, error) {
	if err := db.CheckRule(r); err != nil {
		return db.ACLRule{}, fmt.Errorf("add ACL rule: %w", err)
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	r.CreatedAt = r.CreatedAt.UTC()
	d := s.Dialect()
	err := s.Write(ctx, func(q Querier) error {
		var err error
		switch r.SubjectKind {
		case db.KindUser:
			var id int64
			err = q.QueryRow(ctx, `SELECT id FROM users WHERE name = `+d.P(1)+d.ForShare, r.Subject).Scan(&id)
			if NoRows(err) {
				err = NotFound("subject user", strconv.Quote(r.Subject))
			}
		case db.KindUserGroup:
			_, err = GroupID(ctx, q, d, UserGroupTables, r.Subject, d.ForShare)
		}
		if err != nil {
			return err
		}
		switch r.TargetKind {
		case db.KindClientGroup:
			gid, err := GroupID(ctx, q, d, ClientGroupTables, r.Target, d.ForShare)
			if err != nil {
				return err
			}
			if err := refuseByFacts(ctx, q, d, gid, r.Target, "an ACL rule may not name it"); err != nil {
				return err
			}
		case db.KindClient:
			err := q.QueryRow(ctx, `SELECT name FROM clients WHERE id = `+d.P(1)+d.ForShare, r.TargetID).Scan(&r.Target)
			if NoRows(err) {
				return NotFound("target client", r.TargetID)
			} else if err != nil {
				return err
			}
		}
		r.ID, err = q.Insert(ctx, `
			INSERT INTO acl_rules (subject_kind, subject, permission, target_kind, target, allow, active, note, created_by, created_at, target_id)
			VALUES (`+placeholders(d, 11)+`)`,
			r.SubjectKind, r.Subject, r.Permission, r.TargetKind, r.Target, r.Allow, r.Active, r.Note, r.CreatedBy, r.CreatedAt.UnixNano(), NullID(r.TargetID))
		return err
	})
	if err != nil {
		return db.ACLRule{}, fmt.Errorf("add ACL rule: %w", d.Classify(err))
	}
	return r, nil
}

// ListACLRules lists every rule, active or not, by id (the order in which
// they were added).
func ListACLRules(ctx context.Context, s DB) ([]db.ACLRule, error) {
	rules, err := ListRules(ctx, s.Reader())
	if err != nil {
		return nil, fmt.Errorf("list ACL rules: %w", err)
	}
	return rules, nil
}

// ListRules reads every rule by id.
func ListRules(ctx context.Context, q Querier) ([]db.ACLRule, error) {
	var out []db.ACLRule
	err := q.Each(ctx, `SELECT `+RuleCols+` FROM acl_rules ORDER BY id`, nil, func(row Scanner) error {
		r, err := ScanRule(row)
		out = append(out, r)
		return err
	})
	return out, err
}

// NullID stores an absent id (0) as NULL.
func NullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// placeholders lists the first n placeholders: "?1, ?2, …".
func placeholders(d *Dialect, n int) string {
	s := ""
	for i := 1; i <= n; i++ {
		if i > 1 {
			s += ", "
		}
		s += d.P(i)
	}
	return s
}

// ReasonByFacts says why a client group that selects by facts is kept out
// of the ACL and of other groups.
const ReasonByFacts = "facts are claims of the machine: a machine could grant itself work by claiming one"

// refuseByFacts fails with ErrInvalid when client group gid selects by
// facts: what may not be done with it is what.
func refuseByFacts(ctx context.Context, q Querier, d *Dialect, gid int64, name, what string) error {
	var byFacts bool
	if err := q.QueryRow(ctx, `SELECT by_facts FROM client_groups WHERE id = `+d.P(1), gid).Scan(&byFacts); err != nil {
		return err
	}
	if byFacts {
		return fmt.Errorf("client group %q selects by facts, so %s (%s): %w", name, what, ReasonByFacts, db.ErrInvalid)
	}
	return nil
}

// Policy loads the ACL rules and group memberships as one consistent
// snapshot.
func Policy(ctx context.Context, s DB) (db.PolicyData, error) {
	empty := func() db.PolicyData {
		return db.PolicyData{
			UserGroupUsers:    map[string][]string{},
			UserGroupChildren: map[string][]string{},
			ClientGroupIDs:    map[string][]int64{},
			ClientGroupChild:  map[string][]string{},
			ClientGroupSel:    map[string]string{},
		}
	}
	var p db.PolicyData
	pairs := []struct {
		q   string
		add func(g, m string, id int64)
	}{
		{`SELECT g.name, u.name, CAST(0 AS BIGINT) FROM user_group_members m JOIN user_groups g ON g.id = m.group_id JOIN users u ON u.id = m.user_id
			ORDER BY g.name, u.name`,
			func(g, m string, _ int64) { p.UserGroupUsers[g] = append(p.UserGroupUsers[g], m) }},
		{`SELECT p.name, c.name, CAST(0 AS BIGINT) FROM user_group_children x JOIN user_groups p ON p.id = x.parent_id JOIN user_groups c ON c.id = x.child_id
			ORDER BY p.name, c.name`,
			func(g, m string, _ int64) { p.UserGroupChildren[g] = append(p.UserGroupChildren[g], m) }},
		{`SELECT g.name, '', m.client_id FROM client_group_members m JOIN client_groups g ON g.id = m.group_id
			ORDER BY g.name, m.client_id`,
			func(g, _ string, id int64) { p.ClientGroupIDs[g] = append(p.ClientGroupIDs[g], id) }},
		{`SELECT p.name, c.name, CAST(0 AS BIGINT) FROM client_group_children x JOIN client_groups p ON p.id = x.parent_id JOIN client_groups c ON c.id = x.child_id
			ORDER BY p.name, c.name`,
			func(g, m string, _ int64) { p.ClientGroupChild[g] = append(p.ClientGroupChild[g], m) }},
		{`SELECT name, selector, CAST(0 AS BIGINT) FROM client_groups WHERE selector <> '' ORDER BY name`,
			func(g, sel string, _ int64) { p.ClientGroupSel[g] = sel }},
	}
	err := s.Read(ctx, func(q Querier) error {
		p = empty()
		var err error
		if p.Rules, err = ListRules(ctx, q); err != nil {
			return fmt.Errorf("rules: %w", err)
		}
		for _, pr := range pairs {
			err := q.Each(ctx, pr.q, nil, func(row Scanner) error {
				var g, m string
				var id int64
				if err := row.Scan(&g, &m, &id); err != nil {
					return err
				}
				pr.add(g, m, id)
				return nil
			})
			if err != nil {
				return fmt.Errorf("groups: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return empty(), fmt.Errorf("load policy: %w", err)
	}
	return p, nil
}
