package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
)

// A claim that takes all it asked for marks the client busy (its next
// claim skips the read that spares idle agents the writer); a claim that
// comes back short clears the mark; the runs handed out are the same
// either way: each once, then none.
func TestBusyClientsSkipTheDueRead(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	at := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	c, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp", Name: "c", At: at})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.SubmitJob(ctx, db.NewJob{Name: "j", Script: "true", Interpreter: "/bin/sh", SubmittedBy: "admin",
			ClientIDs: []int64{c.ID}, CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int64]bool{}
	for i, want := range []struct {
		n    int
		busy bool
	}{{1, true}, {1, true}, {0, false}, {0, false}} {
		ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: c.ID, Max: 1, At: at, Lease: time.Minute, ServerID: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if seen[d.Run.ID] {
				t.Fatalf("claim %d handed out run %d again", i+1, d.Run.ID)
			}
			seen[d.Run.ID] = true
		}
		if len(ds) != want.n || s.busy.is(c.ID) != want.busy {
			t.Fatalf("claim %d: %d runs, busy %v; want %d, %v", i+1, len(ds), s.busy.is(c.ID), want.n, want.busy)
		}
	}
}
