package service_test

import (
	"context"
	"errors"
	"testing"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/service"
)

// forbid is an Authorizer that refuses every admin permission, as the
// daemon does for an operator without rules, and notes what was asked.
type forbid struct{ asked []string }

func (f *forbid) Authorize(_ context.Context, perm string) error {
	f.asked = append(f.asked, perm)
	return &service.Error{Kind: service.ErrForbidden, Msg: "needs " + perm}
}

func addUser(t *testing.T, s *service.Service, name string) db.User {
	t.Helper()
	if _, err := s.AddUser(context.Background(), name, service.NewUser{NoToken: true}); err != nil {
		t.Fatal(err)
	}
	u, err := s.Store.UserByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// A user comes with a first token that authenticates it, unless asked
// not to; names that would not read back as names are refused.
func TestAddUser(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	tok, err := s.AddUser(ctx, "alice", service.NewUser{TokenName: "laptop"})
	if err != nil || tok.User != "alice" || tok.Name != "laptop" || tok.ID == 0 || tok.Token == "" {
		t.Fatalf("AddUser(alice) = %+v, %v", tok, err)
	}
	if u, err := service.VerifyToken(ctx, s.Store, tok.Token); err != nil || u.Name != "alice" {
		t.Fatalf("the new token authenticates %+v, %v; want alice", u, err)
	}
	if _, err := service.VerifyToken(ctx, s.Store, tok.Token+"x"); !errors.Is(err, service.ErrBadToken) {
		t.Fatalf("a wrong secret: %v, want ErrBadToken", err)
	}
	if tok, err := s.AddUser(ctx, "bob", service.NewUser{}); err != nil || tok.Name != "token" {
		t.Fatalf("AddUser(bob) = %+v, %v; want a token named token", tok, err)
	}
	if tok, err := s.AddUser(ctx, "carol", service.NewUser{NoToken: true}); err != nil || tok != (service.NewToken{User: "carol"}) {
		t.Fatalf("AddUser(carol, no token) = %+v, %v", tok, err)
	}
	if _, err := s.AddUser(ctx, "alice", service.NewUser{}); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("a second alice: %v, want a conflict", err)
	}
	_, err = s.AddUser(ctx, "1234", service.NewUser{})
	wantKind(t, err, service.ErrInvalid, `user: "1234" is all digits`)
	_, err = s.AddUser(ctx, " dave", service.NewUser{})
	wantKind(t, err, service.ErrInvalid, "leading or trailing space")
	// The token's name is checked once the user exists.
	_, err = s.AddUser(ctx, "erin", service.NewUser{TokenName: "*"})
	wantKind(t, err, service.ErrInvalid, "token name: * is reserved")
	if _, err := s.Store.UserByName(ctx, "erin"); err != nil {
		t.Fatalf("erin: %v", err)
	}
}

func TestUsersListsLiveTokensAndGroups(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	alice := addUser(t, s, "alice")
	for _, name := range []string{"a", "b"} {
		if _, err := s.CreateToken(ctx, alice, "", name); err != nil {
			t.Fatal(err)
		}
	}
	toks, err := s.Tokens(ctx, alice, "")
	if err != nil || len(toks) != 2 || toks[0].User != "alice" {
		t.Fatalf("Tokens(alice) = %+v, %v", toks, err)
	}
	if _, err := s.RevokeToken(ctx, alice, toks[0].ID); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"ops", "dev"} {
		if _, err := s.Store.CreateGroup(ctx, db.KindUserGroup, g, ""); err != nil {
			t.Fatal(err)
		}
		if err := s.Store.AddGroupMember(ctx, db.KindUserGroup, g, db.Member{User: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	addUser(t, s, "bob")
	users, err := s.Users(ctx)
	if err != nil || len(users) != 2 {
		t.Fatalf("Users = %+v, %v", users, err)
	}
	for _, u := range users {
		switch u.Name {
		case "alice":
			if u.Tokens != 1 || len(u.Groups) != 2 || u.Groups[0] != "dev" || u.Groups[1] != "ops" {
				t.Errorf("alice = %+v, want 1 live token, groups dev and ops", u)
			}
		case "bob":
			if u.Tokens != 0 || u.Groups == nil || len(u.Groups) != 0 {
				t.Errorf("bob = %+v, want no token and an empty (not nil) group list", u)
			}
		}
	}
}

// One's own tokens need no permission; another user's need user.write
// (create, revoke) or user.read (list), asked of the Authorizer.
func TestAnotherUsersTokensNeedPermission(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	alice, bob := addUser(t, s, "alice"), addUser(t, s, "bob")
	bobs, err := s.CreateToken(ctx, bob, "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	// Without an Authorizer (a local store) everything is allowed; an
	// unknown user is not found.
	if tok, err := s.CreateToken(ctx, alice, "bob", "for-bob"); err != nil || tok.User != "bob" {
		t.Fatalf("CreateToken(bob) for alice, no Authorizer = %+v, %v", tok, err)
	}
	if _, err := s.CreateToken(ctx, alice, "nobody", ""); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("a token for nobody: %v, want not found", err)
	}

	f := &forbid{}
	s.Authz = f
	_, err = s.CreateToken(ctx, alice, "bob", "")
	wantKind(t, err, service.ErrForbidden, "needs user.write")
	_, err = s.Tokens(ctx, alice, "bob")
	wantKind(t, err, service.ErrForbidden, "needs user.read")
	_, err = s.RevokeToken(ctx, alice, bobs.ID)
	wantKind(t, err, service.ErrForbidden, "needs user.write")
	if want := []string{"user.write", "user.read", "user.write"}; len(f.asked) != 3 || f.asked[0] != want[0] || f.asked[1] != want[1] || f.asked[2] != want[2] {
		t.Fatalf("asked %v, want %v", f.asked, want)
	}
	if toks, _ := s.Store.ListTokens(ctx, bob.ID); len(toks) != 2 || toks[0].Revoked {
		t.Fatalf("bob's tokens after the refusals: %+v", toks)
	}

	// Her own: no question asked.
	f.asked = nil
	mine, err := s.CreateToken(ctx, alice, "alice", "mine")
	if err != nil {
		t.Fatal(err)
	}
	if toks, err := s.Tokens(ctx, alice, ""); err != nil || len(toks) != 1 {
		t.Fatalf("Tokens(own) = %+v, %v", toks, err)
	}
	if r, err := s.RevokeToken(ctx, alice, mine.ID); err != nil || !r.Revoked || r.User != "alice" || r.Name != "mine" {
		t.Fatalf("RevokeToken(own) = %+v, %v", r, err)
	}
	if len(f.asked) != 0 {
		t.Fatalf("asked %v for one's own tokens", f.asked)
	}
	if _, err := service.VerifyToken(ctx, s.Store, mine.Token); !errors.Is(err, service.ErrBadToken) {
		t.Fatalf("a revoked token: %v, want ErrBadToken", err)
	}
	if _, err := s.RevokeToken(ctx, alice, 999); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("revoking token 999: %v, want not found", err)
	}
	_, err = s.CreateToken(ctx, alice, "", " spaced")
	wantKind(t, err, service.ErrInvalid, "token name:")
}

// Deleting a user takes the rules naming it along, says which, and drops
// the ACL snapshot; admin is built in.
func TestDeleteUserTakesItsRules(t *testing.T) {
	ctx := context.Background()
	s, loads := newService(t)
	addUser(t, s, "bob")
	r, err := s.Store.AddACLRule(ctx, db.ACLRule{SubjectKind: db.KindUser, Subject: "bob", Permission: "run", TargetKind: db.KindAny,
		Allow: true, Active: true, CreatedBy: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Policy.Policy(ctx); err != nil {
		t.Fatal(err)
	}
	gone, err := s.DeleteUser(ctx, "bob")
	if err != nil || gone.Name != "bob" || len(gone.Rules) != 1 || gone.Rules[0].ID != r.ID {
		t.Fatalf("DeleteUser(bob) = %+v, %v; want bob with rule %d", gone, err, r.ID)
	}
	if _, err := s.Policy.Policy(ctx); err != nil || *loads != 2 {
		t.Fatalf("policy loaded %d times, want 2 (%v)", *loads, err)
	}
	if _, err := s.DeleteUser(ctx, "bob"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("deleting bob twice: %v, want not found", err)
	}
	if _, err := s.Store.EnsureUser(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteUser(ctx, "admin"); !errors.Is(err, service.ErrInvalid) {
		t.Fatalf("deleting admin: %v, want invalid", err)
	}
}
