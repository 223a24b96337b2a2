package server

import (
	"context"
	"strconv"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/xmlrpc"
)

func (s *Server) groupOperations() []Operation {
	const kinds = "kind is \"user\" (a group of operators) or \"client\" (a group of machines); "
	const groupPerms = "Needs group.write for a client group, acl.write for a user group (its members hold the rules that name it)."
	return []Operation{
		{Name: api.MethodGroupCreate, Class: gate.Modifier, caller: byOperator, Permission: PermGroupWrite, permissionFor: groupWritePermission, Checks: []string{PermACLWrite}, handler: s.groupCreate,
			Signature: []string{"struct", "string", "string", "string", "string"},
			Help: "Create a group. Params: kind, name, optional note, optional selector (client groups: a dynamic group, whose members are " +
				"the accepted clients the selector matches when it is used; it has no members of its own; one whose selector names a fact " +
				"may be neither named by an ACL rule nor nested, since facts are claims of the machine). " + kinds + "the two kinds have separate names. " + groupPerms},
		{Name: api.MethodGroupDelete, Class: gate.Modifier, caller: byOperator, Permission: PermGroupWrite, permissionFor: groupWritePermission, Checks: []string{PermACLWrite}, handler: s.groupDelete,
			Signature: []string{"struct", "string", "string"},
			Help:      "Delete a group with its memberships. Params: kind, name. Fault 409 while an ACL rule names it (remove those rules first, so a later group of the same name inherits none). " + groupPerms},
		{Name: api.MethodGroupList, Class: gate.NonModifier, caller: byOperator, Permission: PermGroupRead, handler: s.groupList,
			Signature: []string{"array", "string"},
			Help:      "List groups with their direct members and nested groups. Param: optional kind (default: both)."},
		{Name: api.MethodGroupGet, Class: gate.NonModifier, caller: byOperator, Permission: PermGroupRead, handler: s.groupGet,
			Signature: []string{"struct", "string", "string"},
			Help:      "Get one group. Params: kind, name."},
		{Name: api.MethodGroupAdd, Class: gate.Modifier, caller: byOperator, Permission: PermGroupWrite, permissionFor: groupWritePermission, Checks: []string{PermACLWrite}, handler: s.groupMembers(true),
			Signature: []string{"struct", "string", "string", "array"},
			Help: "Add members to a group. Params: kind, group, array of members: a user name (user group) or a client id, name or fingerprint (client group); " +
				"\"group:NAME\" nests another group of the same kind (its members become members). Adding a member twice is harmless; a cycle is fault 400. " + groupPerms},
		{Name: api.MethodGroupRemove, Class: gate.Modifier, caller: byOperator, Permission: PermGroupWrite, permissionFor: groupWritePermission, Checks: []string{PermACLWrite}, handler: s.groupMembers(false),
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
	out := api.Group{Kind: wireKind(g.Kind), Name: g.Name, Note: g.Note, CreatedAt: g.CreatedAt, Members: []string{}, Groups: []string{},
		Selector: g.Selector}
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
	if err := p.Count(2, 4); err != nil {
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
	var note string
	if p.Has(2) {
		if note, err = p.String(2, "note"); err != nil {
			return nil, err
		}
	}
	var sel string
	if p.Has(3) {
		if sel, err = p.String(3, "selector"); err != nil {
			return nil, err
		}
	}
	var g db.Group
	switch {
	case sel == "":
		g, err = s.svc.CreateGroup(ctx, kind, name, note)
	case kind != db.KindClientGroup:
		return nil, &xmlrpc.Fault{Code: xmlrpc.CodeInvalid, Message: "param 4 (selector): only a client group selects its members"}
	default:
		g, err = s.svc.CreateDynamicGroup(ctx, name, note, sel)
	}
	if err != nil {
		return nil, err
	}
	return apiGroup(g), nil
}

// groupParams reads the (kind, name) params of group.get and group.delete.
func groupParams(p xmlrpc.Params) (kind, name string, err error) {
	if err = p.Count(2, 2); err != nil {
		return
	}
	if kind, err = groupKind(p, 0); err != nil {
		return
	}
	name, err = p.String(1, "name")
	return
}

func (s *Server) groupDelete(ctx context.Context, p xmlrpc.Params) (any, error) {
	kind, name, err := groupParams(p)
	if err != nil {
		return nil, err
	}
	g, err := s.svc.DeleteGroup(ctx, kind, name)
	if err != nil {
		return nil, err
	}
	return apiGroup(g), nil
}

func (s *Server) groupList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 1); err != nil {
		return nil, err
	}
	var kind string
	if p.Has(0) {
		k, err := groupKind(p, 0)
		if err != nil {
			return nil, err
		}
		kind = k
	}
	gs, err := s.svc.Groups(ctx, kind)
	if err != nil {
		return nil, err
	}
	return mapSlice(gs, apiGroup), nil
}

func (s *Server) groupGet(ctx context.Context, p xmlrpc.Params) (any, error) {
	kind, name, err := groupParams(p)
	if err != nil {
		return nil, err
	}
	g, err := s.svc.Group(ctx, kind, name)
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
		change := s.svc.RemoveGroupMembers
		if add {
			change = s.svc.AddGroupMembers
		}
		g, err := change(ctx, kind, name, refs)
		if err != nil {
			return nil, err
		}
		return apiGroup(g), nil
	}
}
