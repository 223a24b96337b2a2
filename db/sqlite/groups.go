package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// groupTables names the tables of one group kind. The names are constants,
// never built from input.
type groupTables struct {
	kind     string
	groups   string // id, name, note, created_at
	members  string // group_id, <member>
	member   string // member column: user_id or client_id
	children string // parent_id, child_id
}

var (
	userGroupTables   = groupTables{db.KindUserGroup, "user_groups", "user_group_members", "user_id", "user_group_children"}
	clientGroupTables = groupTables{db.KindClientGroup, "client_groups", "client_group_members", "client_id", "client_group_children"}
)

func tablesFor(kind string) (groupTables, error) {
	switch kind {
	case db.KindUserGroup:
		return userGroupTables, nil
	case db.KindClientGroup:
		return clientGroupTables, nil
	}
	return groupTables{}, fmt.Errorf("group kind %q: want %s or %s: %w", kind, db.KindUserGroup, db.KindClientGroup, db.ErrInvalid)
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// groupID finds a group by name.
func groupID(ctx context.Context, q queryer, t groupTables, name string) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, `SELECT id FROM `+t.groups+` WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, dbcore.NotFound(t.kind, strconv.Quote(name))
	}
	return id, err
}

// CreateGroup adds an empty group; a taken name is ErrConflict.
func (s *Store) CreateGroup(ctx context.Context, kind, name, note string) (db.Group, error) {
	t, err := tablesFor(kind)
	if err != nil {
		return db.Group{}, fmt.Errorf("create group: %w", err)
	}
	if err := db.CheckNewName(kind, name); err != nil {
		return db.Group{}, fmt.Errorf("create group: %w", err)
	}
	if !utf8.ValidString(note) {
		return db.Group{}, fmt.Errorf("create %s %q: note is not valid UTF-8: %w", kind, name, db.ErrInvalid)
	}
	g := db.Group{Kind: kind, Name: name, Note: note, CreatedAt: time.Now().UTC()}
	res, err := s.w.ExecContext(ctx, `INSERT INTO `+t.groups+` (name, note, created_at) VALUES (?, ?, ?)`, name, note, g.CreatedAt.UnixNano())
	if isUnique(err) {
		return db.Group{}, fmt.Errorf("create %s %q: the name is taken: %w", kind, name, db.ErrConflict)
	} else if err != nil {
		return db.Group{}, fmt.Errorf("create %s %q: %w", kind, name, err)
	}
	if g.ID, err = res.LastInsertId(); err != nil {
		return db.Group{}, fmt.Errorf("create %s %q: %w", kind, name, err)
	}
	return g, nil
}

// DeleteGroup removes a group with its memberships and nesting links (both
// as parent and as child); a group named by an ACL rule is ErrConflict.
func (s *Store) DeleteGroup(ctx context.Context, kind, name string) error {
	t, err := tablesFor(kind)
	if err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		id, err := groupID(ctx, tx, t, name)
		if err != nil {
			return err
		}
		cond := `subject_kind = 'user-group' AND subject = ?`
		if kind == db.KindClientGroup {
			cond = `target_kind = 'client-group' AND target = ?`
		}
		ids, err := ruleIDs(ctx, tx, cond, name)
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			return db.NamedByRules(fmt.Sprintf("%s %q", kind, name), ids)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM `+t.groups+` WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	return nil
}

// Group returns one group with its direct members.
func (s *Store) Group(ctx context.Context, kind, name string) (db.Group, error) {
	t, err := tablesFor(kind)
	if err != nil {
		return db.Group{}, err
	}
	gs, err := s.loadGroups(ctx, t, &name)
	if err != nil {
		return db.Group{}, err
	}
	if len(gs) == 0 {
		return db.Group{}, dbcore.NotFound(kind, strconv.Quote(name))
	}
	return gs[0], nil
}

// ListGroups lists the groups of a kind by name, with their direct members.
func (s *Store) ListGroups(ctx context.Context, kind string) ([]db.Group, error) {
	t, err := tablesFor(kind)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return s.loadGroups(ctx, t, nil)
}

// loadGroups reads groups (all, or the one named) and their direct members
// in one read transaction, so a group and its members are consistent.
func (s *Store) loadGroups(ctx context.Context, t groupTables, name *string) ([]db.Group, error) {
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("load %ss: %w", t.kind, err)
	}
	defer tx.Rollback()
	where, args := "", []any(nil)
	if name != nil {
		where, args = ` WHERE g.name = ?`, []any{*name}
	}
	var out []db.Group
	byID := map[int64]*db.Group{}
	err = eachRow(ctx, tx, `SELECT g.id, g.name, g.note, g.created_at FROM `+t.groups+` g`+where+` ORDER BY g.name`, args,
		func(rows *sql.Rows) error {
			g := db.Group{Kind: t.kind}
			var created int64
			if err := rows.Scan(&g.ID, &g.Name, &g.Note, &created); err != nil {
				return err
			}
			g.CreatedAt = dbcore.Time(created)
			out = append(out, g)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("load %ss: %w", t.kind, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	for i := range out {
		byID[out[i].ID] = &out[i]
	}
	var memberQ string
	if t.kind == db.KindUserGroup {
		memberQ = `SELECT m.group_id, 0, u.name FROM user_group_members m JOIN users u ON u.id = m.user_id
			JOIN user_groups g ON g.id = m.group_id` + where + ` ORDER BY u.name`
	} else {
		memberQ = `SELECT m.group_id, c.id, c.name FROM client_group_members m JOIN clients c ON c.id = m.client_id
			JOIN client_groups g ON g.id = m.group_id` + where + ` ORDER BY c.id`
	}
	err = eachRow(ctx, tx, memberQ, args, func(rows *sql.Rows) error {
		var gid, cid int64
		var mname string
		if err := rows.Scan(&gid, &cid, &mname); err != nil {
			return err
		}
		g := byID[gid]
		if t.kind == db.KindUserGroup {
			g.Users = append(g.Users, mname)
		} else {
			g.ClientIDs, g.MemberNames = append(g.ClientIDs, cid), append(g.MemberNames, mname)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load %s members: %w", t.kind, err)
	}
	err = eachRow(ctx, tx, `SELECT x.parent_id, c.name FROM `+t.children+` x JOIN `+t.groups+` c ON c.id = x.child_id
		JOIN `+t.groups+` g ON g.id = x.parent_id`+where+` ORDER BY c.name`, args, func(rows *sql.Rows) error {
		var gid int64
		var child string
		if err := rows.Scan(&gid, &child); err != nil {
			return err
		}
		g := byID[gid]
		g.Children = append(g.Children, child)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load %s children: %w", t.kind, err)
	}
	return out, nil
}

// eachRow runs a query and calls fn for every row.
func eachRow(ctx context.Context, q queryer, query string, args []any, fn func(*sql.Rows) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// memberRef resolves a member to the table and columns of its link row and
// the id of the member: (table, group column, member column, member id).
func memberRef(ctx context.Context, tx *sql.Tx, t groupTables, m db.Member) (table, gcol, mcol string, mid int64, err error) {
	switch {
	case m.Group != "":
		mid, err = groupID(ctx, tx, t, m.Group)
		return t.children, "parent_id", "child_id", mid, err
	case m.User != "":
		err = tx.QueryRowContext(ctx, `SELECT id FROM users WHERE name = ?`, m.User).Scan(&mid)
		if errors.Is(err, sql.ErrNoRows) {
			err = dbcore.NotFound("user", strconv.Quote(m.User))
		}
		return t.members, "group_id", t.member, mid, err
	default:
		err = tx.QueryRowContext(ctx, `SELECT id FROM clients WHERE id = ?`, m.ClientID).Scan(&mid)
		if errors.Is(err, sql.ErrNoRows) {
			err = dbcore.NotFound("client", m.ClientID)
		}
		return t.members, "group_id", t.member, mid, err
	}
}

// membership runs change in a write transaction with the group's id and
// the member's table, columns and id resolved; verb and prep name the
// change in errors ("add", "to").
func (s *Store) membership(ctx context.Context, kind, group string, m db.Member, verb, prep string,
	change func(tx *sql.Tx, t groupTables, table, gcol, mcol string, gid, mid int64) error) error {
	t, err := tablesFor(kind)
	if err == nil {
		err = db.CheckMember(kind, m)
	}
	if err != nil {
		return fmt.Errorf("%s %s %s %q: %w", verb, prep, kind, group, err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		gid, err := groupID(ctx, tx, t, group)
		if err != nil {
			return err
		}
		table, gcol, mcol, mid, err := memberRef(ctx, tx, t, m)
		if err != nil {
			return err
		}
		return change(tx, t, table, gcol, mcol, gid, mid)
	})
	if err != nil {
		return fmt.Errorf("%s %s %s %s %q: %w", verb, m, prep, kind, group, err)
	}
	return nil
}

// AddGroupMember adds a user, client or child group to a group. Adding an
// existing membership changes nothing; a nesting that would make a cycle
// (including a group in itself) is ErrInvalid.
func (s *Store) AddGroupMember(ctx context.Context, kind, group string, m db.Member) error {
	return s.membership(ctx, kind, group, m, "add", "to", func(tx *sql.Tx, t groupTables, table, gcol, mcol string, gid, mid int64) error {
		if m.Group != "" {
			if mid == gid {
				return fmt.Errorf("a group cannot contain itself: %w", db.ErrInvalid)
			}
			// A cycle would appear if the parent is already below the child.
			var one int
			err := tx.QueryRowContext(ctx, `
				WITH RECURSIVE below(id) AS (
					SELECT child_id FROM `+t.children+` WHERE parent_id = ?
					UNION
					SELECT x.child_id FROM `+t.children+` x JOIN below b ON x.parent_id = b.id
				)
				SELECT 1 FROM below WHERE id = ?`, mid, gid).Scan(&one)
			if err == nil {
				return fmt.Errorf("%s %q already contains %q, nesting would make a cycle: %w", kind, m.Group, group, db.ErrInvalid)
			} else if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (`+gcol+`, `+mcol+`) VALUES (?, ?) ON CONFLICT DO NOTHING`, gid, mid)
		return err
	})
}

// RemoveGroupMember removes one direct membership; one that does not exist
// is ErrNotFound.
func (s *Store) RemoveGroupMember(ctx context.Context, kind, group string, m db.Member) error {
	return s.membership(ctx, kind, group, m, "remove", "from", func(tx *sql.Tx, _ groupTables, table, gcol, mcol string, gid, mid int64) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE `+gcol+` = ? AND `+mcol+` = ?`, gid, mid)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("not a direct member: %w", db.ErrNotFound)
		}
		return nil
	})
}
