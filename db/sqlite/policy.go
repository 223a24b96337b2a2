package sqlite

import (
	"context"
	"fmt"

	"github.com/scirectl/scirectl/db"
)

// Policy loads the ACL rules and group memberships as one consistent
// snapshot (one read transaction).
func (s *Store) Policy(ctx context.Context) (db.PolicyData, error) {
	p := db.PolicyData{
		UserGroupUsers:    map[string][]string{},
		UserGroupChildren: map[string][]string{},
		ClientGroupIDs:    map[string][]int64{},
		ClientGroupChild:  map[string][]string{},
	}
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return p, fmt.Errorf("load policy: %w", err)
	}
	defer tx.Rollback()
	if p.Rules, err = listRules(ctx, tx); err != nil {
		return p, fmt.Errorf("load policy rules: %w", err)
	}
	pairs := []struct {
		q   string
		add func(g, m string, id int64)
	}{
		{`SELECT g.name, u.name, 0 FROM user_group_members m JOIN user_groups g ON g.id = m.group_id JOIN users u ON u.id = m.user_id`,
			func(g, m string, _ int64) { p.UserGroupUsers[g] = append(p.UserGroupUsers[g], m) }},
		{`SELECT p.name, c.name, 0 FROM user_group_children x JOIN user_groups p ON p.id = x.parent_id JOIN user_groups c ON c.id = x.child_id`,
			func(g, m string, _ int64) { p.UserGroupChildren[g] = append(p.UserGroupChildren[g], m) }},
		{`SELECT g.name, '', m.client_id FROM client_group_members m JOIN client_groups g ON g.id = m.group_id`,
			func(g, _ string, id int64) { p.ClientGroupIDs[g] = append(p.ClientGroupIDs[g], id) }},
		{`SELECT p.name, c.name, 0 FROM client_group_children x JOIN client_groups p ON p.id = x.parent_id JOIN client_groups c ON c.id = x.child_id`,
			func(g, m string, _ int64) { p.ClientGroupChild[g] = append(p.ClientGroupChild[g], m) }},
	}
	for _, pr := range pairs {
		rows, err := tx.QueryContext(ctx, pr.q)
		if err != nil {
			return p, fmt.Errorf("load policy groups: %w", err)
		}
		for rows.Next() {
			var g, m string
			var id int64
			if err := rows.Scan(&g, &m, &id); err != nil {
				rows.Close()
				return p, fmt.Errorf("load policy groups: %w", err)
			}
			pr.add(g, m, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return p, fmt.Errorf("load policy groups: %w", err)
		}
	}
	return p, nil
}
