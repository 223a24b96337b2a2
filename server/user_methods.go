package server

import (
	"context"
	"strconv"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/service"
	"github.com/scirectl/scirectl/xmlrpc"
)

func (s *Server) userOperations() []Operation {
	return []Operation{
		{Name: api.MethodUserAdd, Class: gate.Modifier, caller: byOperator, Permission: PermUserWrite, handler: s.userAdd,
			Signature: []string{"struct", "string", "struct"},
			Help: "Add an operator. Params: user name, optional struct {token_name, no_token (bool)}. " +
				"Returns {id, user, name, token} with a first bearer token, shown this once (token empty with no_token)."},
		{Name: api.MethodUserList, Class: gate.NonModifier, caller: byOperator, Permission: PermUserRead, handler: s.userList,
			Signature: []string{"array"},
			Help:      "List operators: [{name, created_at, tokens (live tokens), groups (user groups it is a direct member of)}]."},
		{Name: api.MethodUserDelete, Class: gate.Modifier, caller: byOperator, Permission: PermUserWrite, handler: s.userDelete,
			Signature: []string{"struct", "string"},
			Help: "Delete an operator with its tokens and group memberships. Param: user name. " +
				"The ACL rules whose subject is the user go with it, in the same transaction, and the audit record of the delete lists them " +
				"(a user created later under the same name inherits nothing). Fault 400 for admin."},
		{Name: api.MethodUserTokenCreate, Class: gate.Modifier, caller: byOperator, handler: s.tokenCreate, Checks: []string{PermUserWrite},
			Signature: []string{"struct", "string", "string"},
			Help: "Create a bearer token. Params: optional user name (default: the caller; another user needs user.write), optional token name. " +
				"Returns {id, user, name, token}; the token is shown this once and stored hashed."},
		{Name: api.MethodUserTokenList, Class: gate.NonModifier, caller: byOperator, handler: s.tokenList, Checks: []string{PermUserRead},
			Signature: []string{"array", "string"},
			Help:      "List a user's tokens (never the secrets). Param: optional user name (default: the caller; another user needs user.read)."},
		{Name: api.MethodUserTokenRevoke, Class: gate.Modifier, caller: byOperator, handler: s.tokenRevoke, Checks: []string{PermUserWrite},
			Signature: []string{"struct", "string"},
			Help:      "Revoke a token at once. Param: token id. One's own tokens need no permission; others' need user.write."},
	}
}

// checkNewName is service.CheckNewName with its refusal as a fault, for
// agent.register's client name.
func checkNewName(field, name string) error {
	if err := service.CheckNewName(field, name); err != nil {
		return xmlrpc.Faultf(xmlrpc.CodeInvalid, "%s", err.Error())
	}
	return nil
}

func apiNewToken(t service.NewToken) api.NewToken {
	out := api.NewToken{User: t.User, Name: t.Name, Token: t.Token}
	if t.Token != "" {
		out.ID = strconv.FormatInt(t.ID, 10)
	}
	return out
}

func apiToken(t service.Token) api.Token {
	return api.Token{ID: strconv.FormatInt(t.ID, 10), User: t.User, Name: t.Name, CreatedAt: t.CreatedAt, Revoked: t.Revoked}
}

func (s *Server) userAdd(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 2); err != nil {
		return nil, err
	}
	name, err := p.String(0, "user")
	if err != nil {
		return nil, err
	}
	var opt service.NewUser
	if p.Has(1) {
		in, err := p.Struct(1, "options")
		if err != nil {
			return nil, err
		}
		if err := in.Unknown("token_name", "no_token"); err != nil {
			return nil, err
		}
		if opt.TokenName, _, err = in.String("token_name"); err != nil {
			return nil, err
		}
		if opt.NoToken, _, err = in.Bool("no_token"); err != nil {
			return nil, err
		}
	}
	t, err := s.svc.AddUser(ctx, name, opt)
	if err != nil {
		return nil, err
	}
	return apiNewToken(t), nil
}

func (s *Server) userList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 0); err != nil {
		return nil, err
	}
	users, err := s.svc.Users(ctx)
	if err != nil {
		return nil, err
	}
	return mapSlice(users, func(u service.UserInfo) api.User {
		return api.User{Name: u.Name, CreatedAt: u.CreatedAt, Tokens: u.Tokens, Groups: u.Groups}
	}), nil
}

func (s *Server) userDelete(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	name, err := p.String(0, "user")
	if err != nil {
		return nil, err
	}
	u, err := s.svc.DeleteUser(ctx, name)
	if err != nil {
		return nil, err
	}
	noteRemovedRules(ctx, "user "+strconv.Quote(name), u.Rules)
	return api.User{Name: u.Name, CreatedAt: u.CreatedAt, Groups: []string{}}, nil
}

// tokenParams reads the optional user (default: the caller) and, for
// user.token.create, the optional token name.
func tokenParams(p xmlrpc.Params, max int) (user, name string, err error) {
	if err = p.Count(0, max); err != nil {
		return
	}
	if p.Has(0) {
		if user, err = p.String(0, "user"); err != nil {
			return
		}
	}
	if p.Has(1) {
		name, err = p.String(1, "token_name")
	}
	return
}

func (s *Server) tokenCreate(ctx context.Context, p xmlrpc.Params) (any, error) {
	user, name, err := tokenParams(p, 2)
	if err != nil {
		return nil, err
	}
	t, err := s.svc.CreateToken(ctx, callingUser(ctx), user, name)
	if err != nil {
		return nil, err
	}
	return apiNewToken(t), nil
}

func (s *Server) tokenList(ctx context.Context, p xmlrpc.Params) (any, error) {
	user, _, err := tokenParams(p, 1)
	if err != nil {
		return nil, err
	}
	toks, err := s.svc.Tokens(ctx, callingUser(ctx), user)
	if err != nil {
		return nil, err
	}
	return mapSlice(toks, apiToken), nil
}

func (s *Server) tokenRevoke(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	id, err := p.ID(0, "token_id")
	if err != nil {
		return nil, err
	}
	t, err := s.svc.RevokeToken(ctx, callingUser(ctx), id)
	if err != nil {
		return nil, err
	}
	return apiToken(t), nil
}
