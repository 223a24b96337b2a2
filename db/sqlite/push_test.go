package sqlite_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/sqlite"
)

// TestDueNotBefore: the daemon-mode active clients whose pending runs'
// not_before falls in the window, and the next time after it.
func TestDueNotBefore(t *testing.T) {
	ctx := context.Background()
	st := open(t).(*sqlite.Store)
	t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	client := func(fp, mode string, active bool) int64 {
		c, err := st.RegisterClient(ctx, db.ClientRegistration{Fingerprint: fp, Name: fp, Hostname: fp, Mode: mode,
			CallbackURL: "https://" + fp + ":1/RPC2", At: t0})
		if err != nil {
			t.Fatal(err)
		}
		if active {
			if _, err := st.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
				t.Fatal(err)
			}
		}
		return c.ID
	}
	d1, d2, poll, pending := client("d1", db.ModeDaemon, true), client("d2", db.ModeDaemon, true),
		client("p1", db.ModePoll, true), client("d3", db.ModeDaemon, false)
	submit := func(notBefore time.Time, ids ...int64) {
		if _, err := st.SubmitJob(ctx, db.NewJob{Name: "j", Script: "true", Interpreter: "/bin/sh", SubmittedBy: "admin",
			NotBefore: notBefore, ClientIDs: ids, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	submit(time.Time{}, d1, d2, poll)              // no not_before: never due
	submit(t0.Add(time.Minute), d1, poll, pending) // due in (t0, t0+1m]
	submit(t0.Add(2*time.Minute), d2)              // next
	submit(t0.Add(-time.Minute), d2)               // before the window
	ids, next, err := st.DueNotBefore(ctx, t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []int64{d1}) || !next.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("due %v, next %v; want [%d], %v", ids, next, d1, t0.Add(2*time.Minute))
	}
	ids, next, err = st.DueNotBefore(ctx, t0.Add(time.Minute), t0.Add(time.Hour))
	if err != nil || !slices.Equal(ids, []int64{d2}) || !next.IsZero() {
		t.Fatalf("due %v, next %v, %v; want [%d], none", ids, next, err, d2)
	}
}
