package dbcore

// Groups of users and of clients: validation, the operations and the
// assembly of a group from its rows, once for both drivers.

import (
	"context"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/scirectl/scirectl/db"
)

// GroupTables names the tables of one group kind. The names are
// constants, never built from input.
type GroupTables struct {
	Kind     string
	Groups   string // id, name, note, created_at
	Members  string // group_id, <member>
	Member   string // member column: user_id or client_id
	Children string // parent_id, child_id
}

// The tables of the two group kinds.
var (
	UserGroupTables   = GroupTables{db.KindUserGroup, "user_groups", "user_group_members", "user_id", "user_group_children"}
	ClientGroupTables = GroupTables{db.KindClientGroup, "client_groups", "client_group_members", "client_id", "client_group_children"}
)

// TablesFor returns the tables of a group kind; ErrInvalid for another.
func TablesFor(kind string) (GroupTables, error) {
	switch kind {
	case db.KindUserGroup:
		return UserGroupTables, nil
	case db.KindClientGroup:
		return ClientGroupTables, nil
	}
	return GroupTables{}, fmt.Errorf("group kind %q: want %s or %s: %w", kind, db.KindUserGroup, db.KindClientGroup, db.ErrInvalid)
}

// GroupID finds a group by name; lock is "" or one of the dialect's row
// locks.
func GroupID(ctx context.Context, q Querier, d *Dialect, t GroupTables, name, lock string) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `SELECT id FROM `+t.Groups+` WHERE name = `+d.P(1)+lock, name).Scan(&id)
	if NoRows(err) {
		return 0, NotFound(t.Kind, strconv.Quote(name))
	}
	return id, err
}

// CreateGroup adds an empty group; a taken name is ErrConflict.
func CreateGroup(ctx context.Context, s DB, kind, name, note string) (db.Group, error) {
	return createGroup(ctx, s, kind, name, note, "", false)
}

// CreateDynamicGroup adds a client group with a selector.
func CreateDynamicGroup(ctx context.Context, s DB, name, note, selector string, byFacts bool) (db.Group, error) {
	if selector == "" {
		return db.Group{}, fmt.Errorf("create dynamic group %q: empty selector: %w", name, db.ErrInvalid)
	}
	return createGroup(ctx, s, db.KindClientGroup, name, note, selector, byFacts)
}

func createGroup(ctx context.Context, s DB, kind, name, note, selector string, byFacts bool) (db.Group, error) {
	t, err := TablesFor(kind)
	if err != nil {
		return db.Group{}, fmt.Errorf("create group: %w", err)
	}
	if err := db.CheckNewName(kind, name); err != nil {
		return db.Group{}, fmt.Errorf("create group: %w", err)
	}
	if !utf8.ValidString(note) {
		return db.Group{}, fmt.Errorf("create %s %q: note is not valid UTF-8: %w", kind, name, db.ErrInvalid)
	}
	d := s.Dialect()
	g := db.Group{Kind: kind, Name: name, Note: note, CreatedAt: time.Now().UTC(), Selector: selector, ByFacts: byFacts}
	err = s.Write(ctx, func(q Querier) (err error) {
		if selector != "" {
			g.ID, err = q.Insert(ctx, `INSERT INTO client_groups (name, note, created_at, selector, by_facts) VALUES (`+placeholders(d, 5)+`)`,
				name, note, g.CreatedAt.UnixNano(), selector, byFacts)
			return err
		}
		g.ID, err = q.Insert(ctx, `INSERT INTO `+t.Groups+` (name, note, created_at) VALUES (`+d.P(1)+`, `+d.P(2)+`, `+d.P(3)+`)`,
			name, note, g.CreatedAt.UnixNano())
		return err
	})
	if d.IsUnique(err) {
		return db.Group{}, fmt.Errorf("create %s %q: the name is taken: %w", kind, name, db.ErrConflict)
	} else if err != nil {
		return db.Group{}, fmt.Errorf("create %s %q: %w", kind, name, d.Classify(err))
	}
	return g, nil
}

// DeleteGroup removes a group with its memberships and nesting links (both
// as parent and as child); a group named by an ACL rule is ErrConflict.
// The group's row is locked before the rules are read (AddACLRule
// share-locks it).
func DeleteGroup(ctx context.Context, s DB, kind, name string) error {
	t, err := TablesFor(kind)
	if err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	d := s.Dialect()
	err = s.Write(ctx, func(q Querier) error {
		id, err := GroupID(ctx, q, d, t, name, d.ForUpdate)
		if err != nil {
			return err
		}
		cond := `subject_kind = 'user-group' AND subject = ` + d.P(1)
		if kind == db.KindClientGroup {
			cond = `target_kind = 'client-group' AND target = ` + d.P(1)
		}
		ids, err := IDs(ctx, q, `SELECT id FROM acl_rules WHERE `+cond+` ORDER BY id`, name)
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			return db.NamedByRules(fmt.Sprintf("%s %q", kind, name), ids)
		}
		_, err = q.Exec(ctx, `DELETE FROM `+t.Groups+` WHERE id = `+d.P(1), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete group: %w", d.Classify(err))
	}
	return nil
}

// Group returns one group with its direct members.
func Group(ctx context.Context, s DB, kind, name string) (db.Group, error) {
	t, err := TablesFor(kind)
	if err != nil {
		return db.Group{}, err
	}
	gs, err := loadGroups(ctx, s, t, &name)
	if err != nil {
		return db.Group{}, err
	}
	if len(gs) == 0 {
		return db.Group{}, NotFound(kind, strconv.Quote(name))
	}
	return gs[0], nil
}

// ListGroups lists the groups of a kind by name, with their direct members.
func ListGroups(ctx context.Context, s DB, kind string) ([]db.Group, error) {
	t, err := TablesFor(kind)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return loadGroups(ctx, s, t, nil)
}

// loadGroups reads groups (all, or the one named) and their direct members
// in one snapshot, so a group and its members are consistent.
func loadGroups(ctx context.Context, s DB, t GroupTables, name *string) ([]db.Group, error) {
	d := s.Dialect()
	where, args := "", []any(nil)
	if name != nil {
		where, args = ` WHERE g.name = `+d.P(1), []any{*name}
	}
	memberQ := `SELECT m.group_id, c.id, c.name FROM client_group_members m JOIN clients c ON c.id = m.client_id
		JOIN client_groups g ON g.id = m.group_id` + where + ` ORDER BY c.id`
	if t.Kind == db.KindUserGroup {
		memberQ = `SELECT m.group_id, CAST(0 AS BIGINT), u.name FROM user_group_members m JOIN users u ON u.id = m.user_id
		JOIN user_groups g ON g.id = m.group_id` + where + ` ORDER BY u.name`
	}
	var out []db.Group
	err := s.Read(ctx, func(q Querier) error {
		out = nil
		cols := `g.id, g.name, g.note, g.created_at, '', (1 = 0)` // user groups have no selector
		if t.Kind == db.KindClientGroup {
			cols = `g.id, g.name, g.note, g.created_at, g.selector, g.by_facts`
		}
		err := q.Each(ctx, `SELECT `+cols+` FROM `+t.Groups+` g`+where+` ORDER BY g.name`, args,
			func(row Scanner) error {
				g := db.Group{Kind: t.Kind}
				var created int64
				if err := row.Scan(&g.ID, &g.Name, &g.Note, &created, &g.Selector, &g.ByFacts); err != nil {
					return err
				}
				g.CreatedAt = Time(created)
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
		err = q.Each(ctx, memberQ, args, func(row Scanner) error {
			var gid, cid int64
			var mname string
			if err := row.Scan(&gid, &cid, &mname); err != nil {
				return err
			}
			g := byID[gid]
			if t.Kind == db.KindUserGroup {
				g.Users = append(g.Users, mname)
			} else {
				g.ClientIDs, g.MemberNames = append(g.ClientIDs, cid), append(g.MemberNames, mname)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("members: %w", err)
		}
		err = q.Each(ctx, `SELECT x.parent_id, c.name FROM `+t.Children+` x JOIN `+t.Groups+` c ON c.id = x.child_id
			JOIN `+t.Groups+` g ON g.id = x.parent_id`+where+` ORDER BY c.name`, args, func(row Scanner) error {
			var gid int64
			var child string
			if err := row.Scan(&gid, &child); err != nil {
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
		return nil, fmt.Errorf("load %ss: %w", t.Kind, d.Classify(err))
	}
	return out, nil
}

// memberLink is where a membership is stored: the link table, its group
// column and its member column, and the member's id.
type memberLink struct {
	table, gcol, mcol string
	mid               int64
}

// resolveMember finds the member's id and its link table.
func resolveMember(ctx context.Context, q Querier, d *Dialect, t GroupTables, m db.Member) (memberLink, error) {
	var l memberLink
	var err error
	switch {
	case m.Group != "":
		l.mid, err = GroupID(ctx, q, d, t, m.Group, "")
		l.table, l.gcol, l.mcol = t.Children, "parent_id", "child_id"
	case m.User != "":
		err = q.QueryRow(ctx, `SELECT id FROM users WHERE name = `+d.P(1), m.User).Scan(&l.mid)
		if NoRows(err) {
			err = NotFound("user", strconv.Quote(m.User))
		}
		l.table, l.gcol, l.mcol = t.Members, "group_id", t.Member
	default:
		err = q.QueryRow(ctx, `SELECT id FROM clients WHERE id = `+d.P(1), m.ClientID).Scan(&l.mid)
		if NoRows(err) {
			err = NotFound("client", m.ClientID)
		}
		l.table, l.gcol, l.mcol = t.Members, "group_id", t.Member
	}
	return l, err
}

// membership runs change in a write transaction with the group's id and
// the member's link resolved; verb and prep name the change in errors
// ("add", "to").
func membership(ctx context.Context, s DB, kind, group string, m db.Member, verb, prep string,
	change func(q Querier, t GroupTables, l memberLink, gid int64) error) error {
	t, err := TablesFor(kind)
	if err == nil {
		err = db.CheckMember(kind, m)
	}
	if err != nil {
		return fmt.Errorf("%s %s %s %q: %w", verb, prep, kind, group, err)
	}
	d := s.Dialect()
	err = s.Write(ctx, func(q Querier) error {
		if lock := d.LockTable(t.Children); m.Group != "" && verb == "add" && lock != "" {
			// Nestings of a kind are added one at a time across the
			// cluster: two transactions each adding one half of a cycle
			// would otherwise both find none. Reads are not blocked.
			if _, err := q.Exec(ctx, lock); err != nil {
				return err
			}
		}
		gid, err := GroupID(ctx, q, d, t, group, "")
		if err != nil {
			return err
		}
		l, err := resolveMember(ctx, q, d, t, m)
		if err != nil {
			return err
		}
		return change(q, t, l, gid)
	})
	if err != nil {
		// A group or member deleted between the lookup and the insert is
		// a foreign key violation: not found (Classify).
		return fmt.Errorf("%s %s %s %s %q: %w", verb, m, prep, kind, group, d.Classify(err))
	}
	return nil
}

// AddGroupMember adds a user, client or child group to a group. Adding an
// existing membership changes nothing; a nesting that would make a cycle
// (including a group in itself) is ErrInvalid.
func AddGroupMember(ctx context.Context, s DB, kind, group string, m db.Member) error {
	d := s.Dialect()
	return membership(ctx, s, kind, group, m, "add", "to", func(q Querier, t GroupTables, l memberLink, gid int64) error {
		if t.Kind == db.KindClientGroup {
			var sel string
			if err := q.QueryRow(ctx, `SELECT selector FROM client_groups WHERE id = `+d.P(1), gid).Scan(&sel); err != nil {
				return err
			}
			if sel != "" {
				return fmt.Errorf("%q is a dynamic group: its members are the clients its selector %q matches: %w", group, sel, db.ErrInvalid)
			}
			if m.Group != "" {
				if err := refuseByFacts(ctx, q, d, l.mid, m.Group, "no group may nest it"); err != nil {
					return err
				}
			}
		}
		if m.Group != "" {
			if l.mid == gid {
				return fmt.Errorf("a group cannot contain itself: %w", db.ErrInvalid)
			}
			// A cycle would appear if the parent is already below the child.
			cycle, err := Exists(ctx, q, `
				WITH RECURSIVE below(id) AS (
					SELECT child_id FROM `+t.Children+` WHERE parent_id = `+d.P(1)+`
					UNION
					SELECT x.child_id FROM `+t.Children+` x JOIN below b ON x.parent_id = b.id
				)
				SELECT 1 FROM below WHERE id = `+d.P(2), l.mid, gid)
			if err != nil {
				return err
			} else if cycle {
				return fmt.Errorf("%s %q already contains %q, nesting would make a cycle: %w", kind, m.Group, group, db.ErrInvalid)
			}
		}
		_, err := q.Exec(ctx, `INSERT INTO `+l.table+` (`+l.gcol+`, `+l.mcol+`) VALUES (`+d.P(1)+`, `+d.P(2)+`) ON CONFLICT DO NOTHING`, gid, l.mid)
		return err
	})
}

// RemoveGroupMember removes one direct membership; one that does not exist
// is ErrNotFound.
func RemoveGroupMember(ctx context.Context, s DB, kind, group string, m db.Member) error {
	d := s.Dialect()
	return membership(ctx, s, kind, group, m, "remove", "from", func(q Querier, _ GroupTables, l memberLink, gid int64) error {
		n, err := q.Exec(ctx, `DELETE FROM `+l.table+` WHERE `+l.gcol+` = `+d.P(1)+` AND `+l.mcol+` = `+d.P(2), gid, l.mid)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("not a direct member: %w", db.ErrNotFound)
		}
		return nil
	})
}
