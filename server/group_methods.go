package server

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/xmlrpc"
)

func (s *Server) groupOperations() []Operation {
	const kinds = "kind is \"user\" (a group of operators) or \"client\" (a group of machines); "
	const groupPerms = "Needs group.write for a client group, acl.write for a user group (its members hold the rules that name it)."
	return []Operation{
		{Name: "group.create", Class: gate.Modifier, caller: byOperator, Permission: PermGroupWrite, permissionFor: groupWritePermission, Checks: []string{PermACLWrite}, handler: s.groupCreate,
			Signature: []string{"struct", "string", "string", "string"},
			Help:      "Create a group. Params: kind, name, optional note. " + kinds + "the two kinds have separate names. " + groupPerms},
		{Name: "group.delete", Class: gate.Modifier, caller: byOperator, Permission: PermGroupWrite, permissionFor: groupWritePermission, Checks: []string{PermACLWrite}, handler: s.groupDelete,
			Signature: []string{"struct", "string", "string"},
			Help:      "Delete a group with its memberships. Params: kind, name. Fault 409 while an ACL rule names it (remove those rules first, so a later group of the same name inherits none). " + groupPerms},
		{Name: "group.list", Class: gate.NonModifier, caller: byOperator, Permission: PermGroupRead, handler: s.groupList,
			Signature: []string{"array", "string"},
			Help:      "List groups with their direct members and nested groups. Param: optional kind (default: both)."},
		{Name: "group.get", Class: gate.NonModifier, caller: byOperator, Permission: PermGroupRead, handler: s.groupGet,
			Signature: []string{"struct", "string", "string"},
			Help:      "Get one group. Params: kind, name."},
		{Name: "group.add", Class: gate.Modifier, caller: byOperator, Permission: PermGroupWrite, permissionFor: groupWritePermission, Checks: []string{PermACLWrite}, handler: s.groupMembers(true),
			Signature: []string{"struct", "string", "string", "array"},
			Help: "Add members to a group. Params: kind, group, array of members: a user name (user group) or a client id, name or fingerprint (client group); " +
				"\"group:NAME\" nests another group of the same kind (its members become members). Adding a member twice is harmless; a cycle is fault 400. " + groupPerms},
		{Name: "group.remove", Class: gate.Modifier, caller: byOperator, Permission: PermGroupWrite, permissionFor: groupWritePermission, Checks: []string{PermACLWrite}, handler: s.groupMembers(false),
			Signature: []string{"struct", "string", "string", "array"},
			Help:      "Remove members from a group. Params as group.add. Fault 404 for a member that is not in the group. " + groupPerms},
	}
}

// groupWritePermission is the permission a group write needs: group.write
// for a client group, acl.write for a user group. A user group's members
// hold every rule that names the group, so changing who is in it (or
// deleting it, which lifts its denies) is changing the ACL: with group.write
// alone one could join "ops" and take its user.token.create on admin.
func groupWritePermission(p xmlrpc.Params) string {
	kind, err := groupKind(p, 0)
	if err != nil {
		return "" // the handler refuses the kind
	}
	if kind == db.KindUserGroup {
		return PermACLWrite
	}
	return PermGroupWrite
}

// groupKind maps the wire kind ("user", "client") to the store's.
func groupKind(p xmlrpc.Params, i int) (string, error) {
	k, err := p.String(i, "kind")
	if err != nil {
		return "", err
	}
	switch k {
	case "user", db.KindUserGroup:
		return db.KindUserGroup, nil
	case "client", db.KindClientGroup:
		return db.KindClientGroup, nil
	}
	return "", xmlrpc.Faultf(xmlrpc.CodeInvalid, "param %d (kind): %q is neither \"user\" nor \"client\"", i+1, k)
}

func wireKind(kind string) string {
	if kind == db.KindClientGroup {
		return "client"
	}
	return "user"
}

func apiGroup(g db.Group) api.Group {
	out := api.Group{Kind: wireKind(g.Kind), Name: g.Name, Note: g.Note, CreatedAt: g.CreatedAt, Members: []string{}, Groups: []string{}}
	if g.Kind == db.KindClientGroup {
		out.Members = append(out.Members, g.MemberNames...)
		for _, id := range g.ClientIDs {
			out.ClientIDs = append(out.ClientIDs, strconv.FormatInt(id, 10))
		}
	} else {
		out.Members = append(out.Members, g.Users...)
	}
	out.Groups = append(out.Groups, g.Children...)
	return out
}

func (s *Server) groupCreate(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(2, 3); err != nil {
		return nil, err
	}
	kind, err := groupKind(p, 0)
	if err != nil {
		return nil, err
	}
	name, err := p.String(1, "name")
	if err != nil {
		return nil, err
	}
	if err := checkNewName("name", name); err != nil {
		return nil, err
	}
	var note string
	if p.Has(2) {
		if note, err = p.String(2, "note"); err != nil {
			return nil, err
		}
	}
	g, err := s.store.CreateGroup(ctx, kind, name, note)
	if err != nil {
		return nil, err
	}
	return apiGroup(g), nil
}

// groupParam reads the (kind, name) params of group.get and group.delete
// and loads the group.
func (s *Server) groupParam(ctx context.Context, p xmlrpc.Params) (kind, name string, g db.Group, err error) {
	if err = p.Count(2, 2); err != nil {
		return
	}
	if kind, err = groupKind(p, 0); err != nil {
		return
	}
	if name, err = p.String(1, "name"); err != nil {
		return
	}
	g, err = s.store.Group(ctx, kind, name)
	return
}

func (s *Server) groupDelete(ctx context.Context, p xmlrpc.Params) (any, error) {
	kind, name, g, err := s.groupParam(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteGroup(ctx, kind, name); err != nil {
		return nil, err
	}
	s.policy.Invalidate()
	return apiGroup(g), nil
}

func (s *Server) groupList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 1); err != nil {
		return nil, err
	}
	kinds := []string{db.KindClientGroup, db.KindUserGroup}
	if p.Has(0) {
		k, err := groupKind(p, 0)
		if err != nil {
			return nil, err
		}
		kinds = []string{k}
	}
	out := []api.Group{}
	for _, k := range kinds {
		gs, err := s.store.ListGroups(ctx, k)
		if err != nil {
			return nil, err
		}
		for _, g := range gs {
			out = append(out, apiGroup(g))
		}
	}
	return out, nil
}

func (s *Server) groupGet(ctx context.Context, p xmlrpc.Params) (any, error) {
	_, _, g, err := s.groupParam(ctx, p)
	if err != nil {
		return nil, err
	}
	return apiGroup(g), nil
}

// groupMembers adds (or removes) every listed member, in order, and stops
// at the first failure; the reply is the group as it is afterwards.
func (s *Server) groupMembers(add bool) xmlrpc.Handler {
	return func(ctx context.Context, p xmlrpc.Params) (any, error) {
		if err := p.Count(3, 3); err != nil {
			return nil, err
		}
		kind, err := groupKind(p, 0)
		if err != nil {
			return nil, err
		}
		name, err := p.String(1, "group")
		if err != nil {
			return nil, err
		}
		refs, err := refList(p, 2, "members")
		if err != nil {
			return nil, err
		}
		defer s.policy.Invalidate()
		for _, ref := range refs {
			m, err := s.member(ctx, kind, ref)
			if err != nil {
				return nil, err
			}
			if add {
				err = s.store.AddGroupMember(ctx, kind, name, m)
			} else {
				err = s.store.RemoveGroupMember(ctx, kind, name, m)
			}
			if err != nil {
				return nil, err
			}
		}
		g, err := s.store.Group(ctx, kind, name)
		if err != nil {
			return nil, err
		}
		return apiGroup(g), nil
	}
}

// member parses a member reference: "group:NAME" for a nested group;
// otherwise a user name, or a client reference ("client:" optional).
func (s *Server) member(ctx context.Context, kind, ref string) (db.Member, error) {
	if g, ok := strings.CutPrefix(ref, "group:"); ok {
		return db.Member{Group: g}, nil
	}
	if kind == db.KindUserGroup {
		return db.Member{User: strings.TrimPrefix(ref, "user:")}, nil
	}
	c, err := s.resolveClient(ctx, strings.TrimPrefix(ref, "client:"))
	if err != nil {
		return db.Member{}, err
	}
	return db.Member{ClientID: c.ID}, nil
}

// groupClients expands client groups, nested ones included, into their
// active clients. Inactive members are skipped: a group may hold machines
// not yet accepted or already revoked.
func (s *Server) groupClients(ctx context.Context, names []string) ([]db.Client, error) {
	seenGroup := map[string]bool{}
	seenClient := map[int64]bool{}
	var out []db.Client
	var walk func(name string) error
	walk = func(name string) error {
		if seenGroup[name] {
			return nil
		}
		seenGroup[name] = true
		g, err := s.store.Group(ctx, db.KindClientGroup, name)
		if errors.Is(err, db.ErrNotFound) {
			return xmlrpc.Faultf(xmlrpc.CodeNotFound, "no client group %q", name)
		} else if err != nil {
			return err
		}
		for _, id := range g.ClientIDs {
			if seenClient[id] {
				continue
			}
			seenClient[id] = true
			c, err := s.store.Client(ctx, id)
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
