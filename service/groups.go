package service

import (
	"context"
	"errors"
	"fmt"
	"github.com/scirectl/scirectl/selector"
	"strings"

	"github.com/scirectl/scirectl/db"
)

// Groups come in two kinds, with separate names: db.KindUserGroup (a group
// of operators, which holds the ACL rules naming it) and db.KindClientGroup
// (a group of machines). Who may write which kind is decided before (the
// server's registry: acl.write for a user group, group.write for a client
// group).

func checkKind(kind string) error {
	switch kind {
	case db.KindUserGroup, db.KindClientGroup:
		return nil
	}
	return refuse(ErrInvalid, "kind: %q is neither %q nor %q", kind, db.KindUserGroup, db.KindClientGroup)
}

// CreateGroup creates an empty group of a kind, with an optional note.
func (s *Service) CreateGroup(ctx context.Context, kind, name, note string) (db.Group, error) {
	if err := checkKind(kind); err != nil {
		return db.Group{}, err
	}
	if err := CheckNewName("name", name); err != nil {
		return db.Group{}, err
	}
	return s.Store.CreateGroup(ctx, kind, name, note)
}

// CreateDynamicGroup adds a client group whose members are the accepted
// clients sel matches when the group is used (job submit, the ACL at
// dispatch). A selector that names a fact makes a group no ACL rule may
// name and no group may nest: facts are the machine's claims.
func (s *Service) CreateDynamicGroup(ctx context.Context, name, note, sel string) (db.Group, error) {
	if err := CheckNewName("name", name); err != nil {
		return db.Group{}, err
	}
	parsed, err := selector.Parse(sel)
	if err != nil {
		return db.Group{}, refuse(ErrInvalid, "selector: %v", err)
	}
	return s.Store.CreateDynamicGroup(ctx, name, note, parsed.String(), !parsed.LabelsOnly())
}

// Group gets one group, with its direct members and nested groups; a
// dynamic group's members are the active clients its selector matches now.
func (s *Service) Group(ctx context.Context, kind, name string) (db.Group, error) {
	if err := checkKind(kind); err != nil {
		return db.Group{}, err
	}
	g, err := s.Store.Group(ctx, kind, name)
	if err != nil || g.Selector == "" {
		return g, err
	}
	p, err := dynamicPick(g)
	if err != nil {
		return g, err
	}
	ms, err := s.choose(ctx, p, nil)
	for _, m := range ms {
		g.ClientIDs, g.MemberNames = append(g.ClientIDs, m.ID), append(g.MemberNames, m.Name)
	}
	return g, err
}

// Groups lists the groups of a kind, or of both when kind is empty (client
// groups first).
func (s *Service) Groups(ctx context.Context, kind string) ([]db.Group, error) {
	kinds := []string{db.KindClientGroup, db.KindUserGroup}
	if kind != "" {
		if err := checkKind(kind); err != nil {
			return nil, err
		}
		kinds = []string{kind}
	}
	out := []db.Group{}
	for _, k := range kinds {
		gs, err := s.Store.ListGroups(ctx, k)
		if err != nil {
			return nil, err
		}
		out = append(out, gs...)
	}
	return out, nil
}

// DeleteGroup deletes a group with its memberships and returns it as it
// was. The store refuses (conflict) while an ACL rule names it, so that a
// later group of the same name inherits none.
func (s *Service) DeleteGroup(ctx context.Context, kind, name string) (db.Group, error) {
	g, err := s.Group(ctx, kind, name)
	if err != nil {
		return db.Group{}, err
	}
	if err := s.Store.DeleteGroup(ctx, kind, name); err != nil {
		return db.Group{}, err
	}
	s.invalidate()
	return g, nil
}

// AddGroupMembers adds every member named in refs to a group, in order,
// stopping at the first failure (those before it stay added), and returns
// the group as it is afterwards. A member is a user name (a user group) or
// a client id, name or fingerprint (a client group; "client:" optional);
// "group:NAME" nests another group of the same kind. Adding a member twice
// is harmless; a cycle is refused.
func (s *Service) AddGroupMembers(ctx context.Context, kind, group string, refs []string) (db.Group, error) {
	return s.groupMembers(ctx, kind, group, refs, s.Store.AddGroupMember)
}

// RemoveGroupMembers removes members from a group, as AddGroupMembers adds
// them; a member that is not in the group is not found.
func (s *Service) RemoveGroupMembers(ctx context.Context, kind, group string, refs []string) (db.Group, error) {
	return s.groupMembers(ctx, kind, group, refs, s.Store.RemoveGroupMember)
}

func (s *Service) groupMembers(ctx context.Context, kind, group string, refs []string,
	change func(ctx context.Context, kind, group string, m db.Member) error) (db.Group, error) {
	if err := checkKind(kind); err != nil {
		return db.Group{}, err
	}
	defer s.invalidate() // those done before a failure stay done
	for _, ref := range refs {
		m, err := s.member(ctx, kind, ref)
		if err != nil {
			return db.Group{}, err
		}
		if err := change(ctx, kind, group, m); err != nil {
			return db.Group{}, err
		}
	}
	return s.Store.Group(ctx, kind, group)
}

// member parses a member reference: "group:NAME" for a nested group;
// otherwise a user name ("user:" optional), or a client reference
// ("client:" optional).
func (s *Service) member(ctx context.Context, kind, ref string) (db.Member, error) {
	if g, ok := strings.CutPrefix(ref, "group:"); ok {
		return db.Member{Group: g}, nil
	}
	if kind == db.KindUserGroup {
		return db.Member{User: strings.TrimPrefix(ref, "user:")}, nil
	}
	c, err := s.Client(ctx, strings.TrimPrefix(ref, "client:"))
	if err != nil {
		return db.Member{}, err
	}
	return db.Member{ClientID: c.ID}, nil
}

// dynamicPick picks the members of a dynamic group: the active clients
// its selector matches.
func dynamicPick(g db.Group) (pick, error) {
	sel, err := selector.Parse(g.Selector)
	if err != nil {
		return nil, fmt.Errorf("client group %q: stored selector: %w", g.Name, err)
	}
	return active(selected(selector.Union{sel})), nil
}

// GroupClients expands client groups, nested ones included, into their
// active clients, each once, in the order met: a dynamic group's are the
// active clients its selector matches now. Inactive members are skipped: a
// group may hold machines not yet accepted or already revoked.
func (s *Service) GroupClients(ctx context.Context, names []string) ([]db.Client, error) {
	seenGroup := map[string]bool{}
	seenClient := map[int64]bool{}
	var out []db.Client
	var walk func(name string) error
	walk = func(name string) error {
		if seenGroup[name] {
			return nil
		}
		seenGroup[name] = true
		g, err := s.Store.Group(ctx, db.KindClientGroup, name)
		if errors.Is(err, db.ErrNotFound) {
			return refuseWhole(ErrNotFound, "no client group %q", name)
		} else if err != nil {
			return err
		}
		if g.Selector != "" {
			p, err := dynamicPick(g)
			if err != nil {
				return err
			}
			cs, err := s.chooseClients(ctx, p, nil)
			if err != nil {
				return err
			}
			for _, c := range cs {
				if !seenClient[c.ID] {
					seenClient[c.ID] = true
					out = append(out, c)
				}
			}
		}
		for _, id := range g.ClientIDs {
			if seenClient[id] {
				continue
			}
			seenClient[id] = true
			c, err := s.Store.Client(ctx, id)
			if err != nil {
				return err
			}
			if c.Status == db.ClientActive {
				out = append(out, c)
			}
		}
		for _, child := range g.Children {
			if err := walk(child); err != nil {
				return err
			}
		}
		return nil
	}
	for _, n := range names {
		if err := walk(n); err != nil {
			return nil, err
		}
	}
	return out, nil
}
