package service

import (
	"context"
	"sort"

	"github.com/scirectl/scirectl/db"
)

// NewToken is a token just made: Token is the secret, shown this once and
// stored only as a hash. A user added without a token has only User.
type NewToken struct {
	ID    int64
	User  string
	Name  string
	Token string
}

// NewUser says how AddUser makes the user's first token: named TokenName
// ("token" when empty), or none with NoToken.
type NewUser struct {
	TokenName string
	NoToken   bool
}

// AddUser adds an operator and, unless opt.NoToken, its first token.
func (s *Service) AddUser(ctx context.Context, name string, opt NewUser) (NewToken, error) {
	if err := CheckNewName("user", name); err != nil {
		return NewToken{}, err
	}
	u, err := s.Store.CreateUser(ctx, name)
	if err != nil {
		return NewToken{}, err
	}
	if opt.NoToken {
		return NewToken{User: u.Name}, nil
	}
	// The token's name is checked once the user exists, as it always was:
	// a bad one leaves the user without a token, to be given one with
	// CreateToken.
	return s.newToken(ctx, u, opt.TokenName)
}

func (s *Service) newToken(ctx context.Context, u db.User, name string) (NewToken, error) {
	if name == "" {
		name = "token"
	} else if err := CheckName("token name", name); err != nil {
		return NewToken{}, err
	}
	tok, t, err := MintToken(ctx, s.Store, u.ID, name)
	if err != nil {
		return NewToken{}, err
	}
	return NewToken{ID: t.ID, User: u.Name, Name: name, Token: tok}, nil
}

// UserInfo is an operator with the number of its live tokens and the user
// groups it is a direct member of (sorted, never nil).
type UserInfo struct {
	db.User
	Tokens int
	Groups []string
}

// Users lists the operators.
func (s *Service) Users(ctx context.Context) ([]UserInfo, error) {
	users, err := s.Store.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	groups, err := s.Store.ListGroups(ctx, db.KindUserGroup)
	if err != nil {
		return nil, err
	}
	memberOf := map[string][]string{}
	for _, g := range groups {
		for _, u := range g.Users {
			memberOf[u] = append(memberOf[u], g.Name)
		}
	}
	out := make([]UserInfo, len(users))
	for i, u := range users {
		toks, err := s.Store.ListTokens(ctx, u.ID)
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
		out[i] = UserInfo{User: u, Tokens: live, Groups: g}
	}
	return out, nil
}

// DeletedUser is a user deleted with the ACL rules whose subject it was.
type DeletedUser struct {
	db.User
	Rules []db.ACLRule
}

// DeleteUser deletes an operator with its tokens, its group memberships
// and the ACL rules naming it, so that a user created later under the same
// name inherits nothing. The store refuses the built-in admin.
func (s *Service) DeleteUser(ctx context.Context, name string) (DeletedUser, error) {
	u, err := s.Store.UserByName(ctx, name)
	if err != nil {
		return DeletedUser{}, err
	}
	rules, err := s.Store.DeleteUser(ctx, name)
	if err != nil {
		return DeletedUser{}, err
	}
	s.invalidate()
	return DeletedUser{User: u, Rules: rules}, nil
}

// tokenOwner is the user whose tokens a token operation acts on: the
// caller when user is empty or the caller's name; another user only with
// permission.
func (s *Service) tokenOwner(ctx context.Context, caller db.User, user, permission string) (db.User, error) {
	if user == "" || user == caller.Name {
		return caller, nil
	}
	if err := s.authorize(ctx, permission); err != nil {
		return db.User{}, err
	}
	return s.Store.UserByName(ctx, user)
}

// CreateToken makes a bearer token named name ("token" when empty) for
// user: the caller's own when user is empty or the caller's name; another
// user's needs user.write.
func (s *Service) CreateToken(ctx context.Context, caller db.User, user, name string) (NewToken, error) {
	u, err := s.tokenOwner(ctx, caller, user, PermUserWrite)
	if err != nil {
		return NewToken{}, err
	}
	return s.newToken(ctx, u, name)
}

// Token is a token's metadata (never its secret) with its owner's name.
type Token struct {
	db.Token
	User string
}

// Tokens lists user's tokens, revoked ones included: the caller's own
// when user is empty or the caller's name; another user's need user.read.
func (s *Service) Tokens(ctx context.Context, caller db.User, user string) ([]Token, error) {
	u, err := s.tokenOwner(ctx, caller, user, PermUserRead)
	if err != nil {
		return nil, err
	}
	toks, err := s.Store.ListTokens(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	out := make([]Token, len(toks))
	for i, t := range toks {
		out[i] = Token{Token: t, User: u.Name}
	}
	return out, nil
}

// RevokeToken revokes a token at once. One's own tokens need no
// permission; another user's need user.write.
func (s *Service) RevokeToken(ctx context.Context, caller db.User, id int64) (Token, error) {
	_, owner, err := s.Store.TokenByID(ctx, id)
	if err != nil {
		return Token{}, err
	}
	if owner.ID != caller.ID {
		if err := s.authorize(ctx, PermUserWrite); err != nil {
			return Token{}, err
		}
	}
	t, err := s.Store.RevokeToken(ctx, id)
	if err != nil {
		return Token{}, err
	}
	t.Revoked = true
	return Token{Token: t, User: owner.Name}, nil
}
