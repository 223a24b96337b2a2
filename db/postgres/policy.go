package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db"
)

// Policy loads the ACL rules and group memberships as one consistent
// snapshot (one REPEATABLE READ transaction).
func (s *Store) Policy(ctx context.Context) (db.PolicyData, error) {
	var p db.PolicyData
	pairs := []struct {
		q   string
		add func(g, m string, id int64)
	}{
		{`SELECT g.name, u.name, 0::bigint FROM user_group_members m JOIN user_groups g ON g.id = m.group_id JOIN users u ON u.id = m.user_id
			ORDER BY g.name, u.name`,
			func(g, m string, _ int64) { p.UserGroupUsers[g] = append(p.UserGroupUsers[g], m) }},
		{`SELECT p.name, c.name, 0::bigint FROM user_group_children x JOIN user_groups p ON p.id = x.parent_id JOIN user_groups c ON c.id = x.child_id
			ORDER BY p.name, c.name`,
			func(g, m string, _ int64) { p.UserGroupChildren[g] = append(p.UserGroupChildren[g], m) }},
		{`SELECT g.name, '', m.client_id FROM client_group_members m JOIN client_groups g ON g.id = m.group_id
			ORDER BY g.name, m.client_id`,
			func(g, _ string, id int64) { p.ClientGroupIDs[g] = append(p.ClientGroupIDs[g], id) }},
		{`SELECT p.name, c.name, 0::bigint FROM client_group_children x JOIN client_groups p ON p.id = x.parent_id JOIN client_groups c ON c.id = x.child_id
			ORDER BY p.name, c.name`,
			func(g, m string, _ int64) { p.ClientGroupChild[g] = append(p.ClientGroupChild[g], m) }},
	}
	err := s.read(ctx, func(tx pgx.Tx) error {
		p = db.PolicyData{
			UserGroupUsers:    map[string][]string{},
			UserGroupChildren: map[string][]string{},
			ClientGroupIDs:    map[string][]int64{},
			ClientGroupChild:  map[string][]string{},
		}
		var err error
		if p.Rules, err = listRules(ctx, tx); err != nil {
			return fmt.Errorf("rules: %w", err)
		}
		for _, pr := range pairs {
			err := eachRow(ctx, tx, pr.q, nil, func(rows pgx.Rows) error {
				var g, m string
				var id int64
				if err := rows.Scan(&g, &m, &id); err != nil {
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
		return db.PolicyData{
			UserGroupUsers:    map[string][]string{},
			UserGroupChildren: map[string][]string{},
			ClientGroupIDs:    map[string][]int64{},
			ClientGroupChild:  map[string][]string{},
		}, fmt.Errorf("load policy: %w", err)
	}
	return p, nil
}
