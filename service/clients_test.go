package service_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/acl"
	"github.com/scirectl/scirectl/db"
	_ "github.com/scirectl/scirectl/db/sqlite"
	"github.com/scirectl/scirectl/service"
)

// newService is the domain layer over a real SQLite file: no server, no
// TLS, no XML-RPC.
func newService(t *testing.T) (*service.Service, *int) {
	t.Helper()
	st, err := db.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "scire.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	loads := 0
	cache := &acl.Cache{Load: func(ctx context.Context) (db.PolicyData, error) { loads++; return st.Policy(ctx) }}
	return &service.Service{Store: st, Policy: cache}, &loads
}

func register(t *testing.T, s *service.Service, fp, name string, status db.ClientStatus) db.Client {
	t.Helper()
	ctx := context.Background()
	c, err := s.Store.RegisterClient(ctx, db.ClientRegistration{Fingerprint: fp, Name: name, Hostname: name, Mode: db.ModePoll, At: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	path := map[db.ClientStatus][]db.ClientStatus{db.ClientActive: {db.ClientActive}, db.ClientRejected: {db.ClientRejected},
		db.ClientRevoked: {db.ClientActive, db.ClientRevoked}}[status]
	for _, to := range path {
		if c, err = s.Store.SetClientStatus(ctx, c.ID, to); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func fp(b byte) string { return strings.Repeat(string(rune('a'+b)), 64) }

func wantKind(t *testing.T, err, kind error, text string) {
	t.Helper()
	var e *service.Error
	if !errors.Is(err, kind) || !errors.As(err, &e) || !strings.Contains(e.Msg, text) {
		t.Fatalf("err = %v, want a %v refusal saying %q", err, kind, text)
	}
}

func TestClientByIDFingerprintOrName(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	web := register(t, s, fp(0), "web1", db.ClientActive)
	register(t, s, fp(1), "twin", db.ClientPending)
	register(t, s, fp(2), "twin", db.ClientRejected)
	for _, ref := range []string{"1", fp(0), strings.ToUpper(fp(0)), "web1"} {
		c, err := s.Client(ctx, ref)
		if err != nil || c.ID != web.ID {
			t.Fatalf("Client(%q) = %+v, %v; want client %d", ref, c, err, web.ID)
		}
	}
	_, err := s.Client(ctx, "twin")
	wantKind(t, err, service.ErrConflict, `2 clients are named "twin"`)
	_, err = s.Client(ctx, "nope")
	wantKind(t, err, service.ErrNotFound, `no client with id, fingerprint or name "nope"`)
	_, err = s.Client(ctx, "")
	wantKind(t, err, service.ErrInvalid, "empty client reference")
	if _, err := s.ListClients(ctx, db.ClientFilter{Status: "sleeping"}, nil); err == nil {
		t.Fatal("ListClients accepted an unknown status")
	} else {
		wantKind(t, err, service.ErrInvalid, `status: "sleeping"`)
	}
	cs, err := s.ListClients(ctx, db.ClientFilter{Status: db.ClientPending}, nil)
	if err != nil || len(cs) != 1 || cs[0].Name != "twin" {
		t.Fatalf("pending clients = %+v, %v", cs, err)
	}
}

// A lifecycle move goes in order and stops at the first refusal: the
// clients before it stay moved, those after it are untouched.
func TestSetClientStatusStopsAtTheFirstRefusal(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	a := register(t, s, fp(0), "a", db.ClientPending)
	b := register(t, s, fp(1), "b", db.ClientRejected)
	c := register(t, s, fp(2), "c", db.ClientPending)
	moved, err := s.SetClientStatus(ctx, []string{"a", "b", "c"}, db.ClientActive)
	if !errors.Is(err, db.ErrConflict) || len(moved) != 1 || moved[0].ID != a.ID {
		t.Fatalf("accept a, b, c = %+v, %v; want a accepted, then a conflict on b", moved, err)
	}
	for id, want := range map[int64]db.ClientStatus{a.ID: db.ClientActive, b.ID: db.ClientRejected, c.ID: db.ClientPending} {
		if got, _ := s.Store.Client(ctx, id); got.Status != want {
			t.Fatalf("client %d is %s, want %s", id, got.Status, want)
		}
	}
}

// Deleting a client takes the ACL rules naming it along, says which, and
// drops the ACL snapshot.
func TestDeleteClientsTakesTheirRules(t *testing.T) {
	ctx := context.Background()
	s, loads := newService(t)
	old := register(t, s, fp(0), "old", db.ClientRevoked)
	if _, err := s.Store.EnsureUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	r, err := s.Store.AddACLRule(ctx, db.ACLRule{SubjectKind: db.KindUser, Subject: "bob", Permission: "run",
		TargetKind: db.KindClient, Target: old.Name, TargetID: old.ID, Allow: true, Active: true, CreatedBy: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Policy.Policy(ctx); err != nil {
		t.Fatal(err)
	}
	gone, err := s.DeleteClients(ctx, []string{"old"})
	if err != nil || len(gone) != 1 || len(gone[0].Rules) != 1 || gone[0].Rules[0].ID != r.ID {
		t.Fatalf("DeleteClients = %+v, %v; want client old with rule %d", gone, err, r.ID)
	}
	if _, err := s.Policy.Policy(ctx); err != nil || *loads != 2 {
		t.Fatalf("policy loaded %d times, want 2: the delete did not drop the snapshot (%v)", *loads, err)
	}
	active := register(t, s, fp(1), "live", db.ClientActive)
	if _, err := s.DeleteClients(ctx, []string{active.Fingerprint}); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("deleting an active client: %v, want a conflict", err)
	}
}
