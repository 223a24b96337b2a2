package server

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/datadir"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/xmlrpc"
)

func (s *Server) userOperations() []Operation {
	return []Operation{
		{Name: "user.add", Class: gate.Modifier, caller: byOperator, Permission: PermUserWrite, handler: s.userAdd,
			Signature: []string{"struct", "string", "struct"},
			Help: "Add an operator. Params: user name, optional struct {token_name, no_token (bool)}. " +
				"Returns {id, user, name, token} with a first bearer token, shown this once (token empty with no_token)."},
		{Name: "user.list", Class: gate.NonModifier, caller: byOperator, Permission: PermUserRead, handler: s.userList,
			Signature: []string{"array"},
			Help:      "List operators: [{name, created_at, tokens (live tokens), groups (user groups it is a direct member of)}]."},
		{Name: "user.delete", Class: gate.Modifier, caller: byOperator, Permission: PermUserWrite, handler: s.userDelete,
			Signature: []string{"struct", "string"},
			Help: "Delete an operator with its tokens and group memberships. Param: user name. " +
				"The ACL rules whose subject is the user go with it, in the same transaction, and the audit record of the delete lists them " +
				"(a user created later under the same name inherits nothing). Fault 400 for admin."},
		{Name: "user.token.create", Class: gate.Modifier, caller: byOperator, handler: s.tokenCreate, Checks: []string{PermUserWrite},
			Signature: []string{"struct", "string", "string"},
			Help: "Create a bearer token. Params: optional user name (default: the caller; another user needs user.write), optional token name. " +
				"Returns {id, user, name, token}; the token is shown this once and stored hashed."},
		{Name: "user.token.list", Class: gate.NonModifier, caller: byOperator, handler: s.tokenList, Checks: []string{PermUserRead},
			Signature: []string{"array", "string"},
			Help:      "List a user's tokens (never the secrets). Param: optional user name (default: the caller; another user needs user.read)."},
		{Name: "user.token.revoke", Class: gate.Modifier, caller: byOperator, handler: s.tokenRevoke, Checks: []string{PermUserWrite},
			Signature: []string{"struct", "string"},
			Help:      "Revoke a token at once. Param: token id. One's own tokens need no permission; others' need user.write."},
	}
}

// checkName refuses names that could not be shown or typed back: empty,
// too long, control characters, or surrounding spaces. Anything else —
// quotes, %, unicode — is a valid, literal name.
func checkName(field, name string) error {
	switch {
	case name == "":
		return xmlrpc.Faultf(xmlrpc.CodeInvalid, "%s: empty", field)
	case len(name) > 200:
		return xmlrpc.Faultf(xmlrpc.CodeInvalid, "%s: %d bytes, at most 200", field, len(name))
	case strings.TrimSpace(name) != name:
		return xmlrpc.Faultf(xmlrpc.CodeInvalid, "%s: %q has leading or trailing space", field, name)
	case name == "*":
		return xmlrpc.Faultf(xmlrpc.CodeInvalid, "%s: * is reserved for \"anyone\" in ACL rules", field)
	}
	for i, r := range name {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return xmlrpc.Faultf(xmlrpc.CodeInvalid, "%s: control or invalid character %U at byte %d", field, r, i)
		}
	}
	return nil
}

// checkNewName is checkName for the name of a user or group being created,
// which also must not read as an id (all digits) or a certificate
// fingerprint (64 hex digits): references try those first.
func checkNewName(field, name string) error {
	if err := checkName(field, name); err != nil {
		return err
	}
	switch {
	case db.IsDecimal(name):
		return xmlrpc.Faultf(xmlrpc.CodeInvalid, "%s: %q is all digits, which reads as an id: use a name with a letter in it", field, name)
	case db.IsFingerprint(name):
		return xmlrpc.Faultf(xmlrpc.CodeInvalid, "%s: %q is 64 hex digits, which reads as a certificate fingerprint", field, name)
	}
	return nil
}

func (s *Server) userAdd(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 2); err != nil {
		return nil, err
	}
	name, err := p.String(0, "user")
	if err != nil {
		return nil, err
	}
	if err := checkNewName("user", name); err != nil {
		return nil, err
	}
	tokenName, noToken := "", false
	if p.Has(1) {
		opt, err := p.Struct(1, "options")
		if err != nil {
			return nil, err
		}
		if err := opt.Unknown("token_name", "no_token"); err != nil {
			return nil, err
		}
		if tokenName, _, err = opt.String("token_name"); err != nil {
			return nil, err
		}
		if noToken, _, err = opt.Bool("no_token"); err != nil {
			return nil, err
		}
	}
	u, err := s.store.CreateUser(ctx, name)
	if err != nil {
		return nil, err
	}
	if noToken {
		return api.NewToken{User: u.Name}, nil
	}
	return s.newToken(ctx, u, tokenName)
}

func (s *Server) newToken(ctx context.Context, u db.User, name string) (api.NewToken, error) {
	if name == "" {
		name = "token"
	} else if err := checkName("token name", name); err != nil {
		return api.NewToken{}, err
	}
	tok, err := datadir.NewToken(ctx, s.store, u.ID, name)
	if err != nil {
		return api.NewToken{}, err
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(tok, datadir.TokenPrefix), "_")
	return api.NewToken{ID: id, User: u.Name, Name: name, Token: tok}, nil
}

func (s *Server) userList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 0); err != nil {
		return nil, err
	}
	users, err := s.store.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	groups, err := s.store.ListGroups(ctx, db.KindUserGroup)
	if err != nil {
		return nil, err
	}
	memberOf := map[string][]string{}
	for _, g := range groups {
		for _, u := range g.Users {
			memberOf[u] = append(memberOf[u], g.Name)
		}
	}
	out := make([]api.User, len(users))
	for i, u := range users {
		toks, err := s.store.ListTokens(ctx, u.ID)
		if err != nil {
			return nil, err
		}
		live := 0
		for _, t := range toks {
			if !t.Revoked {
				live++
			}
		}
		g := memberOf[u.Name]
		if g == nil {
			g = []string{}
		}
		sort.Strings(g)
		out[i] = api.User{Name: u.Name, CreatedAt: u.CreatedAt, Tokens: live, Groups: g}
	}
	return out, nil
}

func (s *Server) userDelete(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	name, err := p.String(0, "user")
	if err != nil {
		return nil, err
	}
	u, err := s.store.UserByName(ctx, name)
	if err != nil {
		return nil, err
	}
	gone, err := s.store.DeleteUser(ctx, name)
	if err != nil {
		return nil, err
	}
	s.policy.Invalidate()
	noteRemovedRules(ctx, "user "+strconv.Quote(name), gone)
	return api.User{Name: u.Name, CreatedAt: u.CreatedAt, Groups: []string{}}, nil
}

// tokenUser resolves the optional user parameter of the token methods: the
// caller by default; another user only with perm.
func (s *Server) tokenUser(ctx context.Context, p xmlrpc.Params, perm string) (db.User, error) {
	me := callingUser(ctx)
	if !p.Has(0) {
		return me, nil
	}
	name, err := p.String(0, "user")
	if err != nil {
		return db.User{}, err
	}
	if name == "" || name == me.Name {
		return me, nil
	}
	if err := s.authorize(ctx, perm); err != nil {
		return db.User{}, err
	}
	return s.store.UserByName(ctx, name)
}

func (s *Server) tokenCreate(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 2); err != nil {
		return nil, err
	}
	u, err := s.tokenUser(ctx, p, PermUserWrite)
	if err != nil {
		return nil, err
	}
	var name string
	if p.Has(1) {
		if name, err = p.String(1, "token_name"); err != nil {
			return nil, err
		}
	}
	return s.newToken(ctx, u, name)
}

func (s *Server) tokenList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 1); err != nil {
		return nil, err
	}
	u, err := s.tokenUser(ctx, p, PermUserRead)
	if err != nil {
		return nil, err
	}
	toks, err := s.store.ListTokens(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	out := make([]api.Token, len(toks))
	for i, t := range toks {
		out[i] = api.Token{ID: strconv.FormatInt(t.ID, 10), User: u.Name, Name: t.Name, CreatedAt: t.CreatedAt, Revoked: t.Revoked}
	}
	return out, nil
}

func (s *Server) tokenRevoke(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	id, err := p.ID(0, "token_id")
	if err != nil {
		return nil, err
	}
	t, owner, err := s.store.TokenByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if owner.ID != callingUser(ctx).ID {
		if err := s.authorize(ctx, PermUserWrite); err != nil {
			return nil, err
		}
	}
	if t, err = s.store.RevokeToken(ctx, id); err != nil {
		return nil, err
	}
	return api.Token{ID: strconv.FormatInt(t.ID, 10), User: owner.Name, Name: t.Name, CreatedAt: t.CreatedAt, Revoked: true}, nil
}
