package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// The validation below is the SQLite driver's, word for word: both drivers
// are held to the same conformance suite.

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

// groupID finds a group by name; lock is "" or a locking clause
// ("FOR SHARE", "FOR UPDATE").
func groupID(ctx context.Context, q queryer, t groupTables, name, lock string) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `SELECT id FROM `+t.groups+` WHERE name = $1 `+lock, name).Scan(&id)
	if noRows(err) {
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
	err = s.pool.QueryRow(ctx, `INSERT INTO `+t.groups+` (name, note, created_at) VALUES ($1, $2, $3) RETURNING id`,
		name, note, g.CreatedAt.UnixNano()).Scan(&g.ID)
	if isUnique(err) {
		return db.Group{}, fmt.Errorf("create %s %q: the name is taken: %w", kind, name, db.ErrConflict)
	} else if err != nil {
		return db.Group{}, fmt.Errorf("create %s %q: %w", kind, name, classify(err))
	}
	return g, nil
}

// DeleteGroup removes a group with its memberships and nesting links (both
// as parent and as child); a group named by an ACL rule is ErrConflict. The
// group's row is locked before the rules are read (AddACLRule share-locks
// it).
func (s *Store) DeleteGroup(ctx context.Context, kind, name string) error {
	t, err := tablesFor(kind)
	if err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		id, err := groupID(ctx, tx, t, name, "FOR UPDATE")
		if err != nil {
			return err
		}
		cond := `subject_kind = 'user-group' AND subject = $1`
		if kind == db.KindClientGroup {
			cond = `target_kind = 'client-group' AND target = $1`
		}
		ids, err := ruleIDs(ctx, tx, cond, name)
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			return db.NamedByRules(fmt.Sprintf("%s %q", kind, name), ids)
		}
		_, err = tx.Exec(ctx, `DELETE FROM `+t.groups+` WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete group: %w", classify(err))
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
// in one snapshot, so a group and its members are consistent.
func (s *Store) loadGroups(ctx context.Context, t groupTables, name *string) ([]db.Group, error) {
	where, args := "", []any(nil)
	if name != nil {
		where, args = ` WHERE g.name = $1`, []any{*name}
	}
	var memberQ string
	if t.kind == db.KindUserGroup {
		memberQ = `SELECT m.group_id, 0::bigint, u.name FROM user_group_members m JOIN users u ON u.id = m.user_id
			JOIN user_groups g ON g.id = m.group_id` + where + ` ORDER BY u.name`
	} else {
		memberQ = `SELECT m.group_id, c.id, c.name FROM client_group_members m JOIN clients c ON c.id = m.client_id
			JOIN client_groups g ON g.id = m.group_id` + where + ` ORDER BY c.id`
	}
	var out []db.Group
	err := s.read(ctx, func(tx pgx.Tx) error {
		out = nil
		err := eachRow(ctx, tx, `SELECT g.id, g.name, g.note, g.created_at FROM `+t.groups+` g`+where+` ORDER BY g.name`, args,
			func(rows pgx.Rows) error {
				g := db.Group{Kind: t.kind}
				var created int64
				if err := rows.Scan(&g.ID, &g.Name, &g.Note, &created); err != nil {
					return err
				}
				g.CreatedAt = dbcore.Time(created)
				out = append(out, g)
				return nil
			})
		if err != nil || len(out) == 0 {
			return err
		}
		byID := make(map[int64]*db.Group, len(out))
		for i := range out {
			byID[out[i].ID] = &out[i]
		}
		err = eachRow(ctx, tx, memberQ, args, func(rows pgx.Rows) error {
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
			return fmt.Errorf("members: %w", err)
		}
		err = eachRow(ctx, tx, `SELECT x.parent_id, c.name FROM `+t.children+` x JOIN `+t.groups+` c ON c.id = x.child_id
			JOIN `+t.groups+` g ON g.id = x.parent_id`+where+` ORDER BY c.name`, args, func(rows pgx.Rows) error {
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
			return fmt.Errorf("children: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load %ss: %w", t.kind, classify(err))
	}
	return out, nil
}

// memberRef resolves a member to the table and columns of its link row and
// the id of the member: (table, group column, member column, member id).
func memberRef(ctx context.Context, tx pgx.Tx, t groupTables, m db.Member) (table, gcol, mcol string, mid int64, err error) {
	switch {
	case m.Group != "":
		mid, err = groupID(ctx, tx, t, m.Group, "")
		return t.children, "parent_id", "child_id", mid, err
	case m.User != "":
		err = tx.QueryRow(ctx, `SELECT id FROM users WHERE name = $1`, m.User).Scan(&mid)
		if noRows(err) {
			err = dbcore.NotFound("user", strconv.Quote(m.User))
		}
		return t.members, "group_id", t.member, mid, err
	default:
		err = tx.QueryRow(ctx, `SELECT id FROM clients WHERE id = $1`, m.ClientID).Scan(&mid)
		if noRows(err) {
			err = dbcore.NotFound("client", m.ClientID)
		}
		return t.members, "group_id", t.member, mid, err
	}
}

// membership runs change in a write transaction with the group's id and
// the member's table, columns and id resolved; verb and prep name the
// change in errors ("add", "to").
func (s *Store) membership(ctx context.Context, kind, group string, m db.Member, verb, prep string,
	change func(tx pgx.Tx, t groupTables, table, gcol, mcol string, gid, mid int64) error) error {
	t, err := tablesFor(kind)
	if err == nil {
		err = db.CheckMember(kind, m)
	}
	if err != nil {
		return fmt.Errorf("%s %s %s %q: %w", verb, prep, kind, group, err)
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if m.Group != "" && verb == "add" {
			// Nestings of a kind are added one at a time across the
			// cluster: two transactions each adding one half of a cycle
			// would otherwise both find none. Reads are not blocked.
			if _, err := tx.Exec(ctx, `LOCK TABLE `+t.children+` IN SHARE ROW EXCLUSIVE MODE`); err != nil {
				return err
			}
		}
		gid, err := groupID(ctx, tx, t, group, "")
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
		// A group or member deleted between the lookup and the insert.
		if pgCode(err) == codeForeignKeyViolation {
			err = fmt.Errorf("%w: %w", err, db.ErrNotFound)
		}
		return fmt.Errorf("%s %s %s %s %q: %w", verb, m, prep, kind, group, classify(err))
	}
	return nil
}

// AddGroupMember adds a user, client or child group to a group. Adding an
// existing membership changes nothing; a nesting that would make a cycle
// (including a group in itself) is ErrInvalid.
func (s *Store) AddGroupMember(ctx context.Context, kind, group string, m db.Member) error {
	return s.membership(ctx, kind, group, m, "add", "to", func(tx pgx.Tx, t groupTables, table, gcol, mcol string, gid, mid int64) error {
		if m.Group != "" {
			if mid == gid {
				return fmt.Errorf("a group cannot contain itself: %w", db.ErrInvalid)
			}
			// A cycle would appear if the parent is already below the child.
			var one int
			err := tx.QueryRow(ctx, `
				WITH RECURSIVE below(id) AS (
					SELECT child_id FROM `+t.children+` WHERE parent_id = $1
					UNION
					SELECT x.child_id FROM `+t.children+` x JOIN below b ON x.parent_id = b.id
				)
				SELECT 1 FROM below WHERE id = $2`, mid, gid).Scan(&one)
			if err == nil {
				return fmt.Errorf("%s %q already contains %q, nesting would make a cycle: %w", kind, m.Group, group, db.ErrInvalid)
			} else if !noRows(err) {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+table+` (`+gcol+`, `+mcol+`) VALUES ($1, $2) ON CONFLICT DO NOTHING`, gid, mid)
		return err
	})
}

// RemoveGroupMember removes one direct membership; one that does not exist
// is ErrNotFound.
func (s *Store) RemoveGroupMember(ctx context.Context, kind, group string, m db.Member) error {
	return s.membership(ctx, kind, group, m, "remove", "from", func(tx pgx.Tx, _ groupTables, table, gcol, mcol string, gid, mid int64) error {
		tag, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE `+gcol+` = $1 AND `+mcol+` = $2`, gid, mid)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("not a direct member: %w", db.ErrNotFound)
		}
		return nil
	})
}
