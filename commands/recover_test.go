package commands

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/datadir"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// deadDaemonFixture leaves in a fresh data directory what a daemon that
// died leaves: a run it sent (lease still running) and no heartbeat since,
// and a live daemon's sent run beside it.
func deadDaemonFixture(t *testing.T) (dir string, dead, live db.ServerInfo, run int64) {
	t.Helper()
	ctx := context.Background()
	dir = filepath.Join(t.TempDir(), "data")
	s, err := db.Open(ctx, "sqlite://"+datadir.Paths{Dir: dir}.DB())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	if dead, err = s.RegisterServer(ctx, db.ServerInfo{Address: "10.0.0.1:7443", StartedAt: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.HeartbeatServer(ctx, dead.ID, now.Add(-10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if live, err = s.RegisterServer(ctx, db.ServerInfo{Address: "10.0.0.2:7443", StartedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.HeartbeatServer(ctx, live.ID, now); err != nil {
		t.Fatal(err)
	}
	c, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp", Name: "m1", At: now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
		t.Fatal(err)
	}
	for _, srv := range []db.ServerInfo{dead, live} {
		if _, err := s.SubmitJob(ctx, db.NewJob{Name: "j", Permission: "run", Interpreter: "/bin/sh", Script: "true",
			SubmittedBy: "admin", ClientIDs: []int64{c.ID}, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: c.ID, Max: 1, At: now, Lease: time.Hour, ServerID: srv.ID})
		if err != nil || len(ds) != 1 {
			t.Fatalf("claim: %v", err)
		}
		if srv.ID == dead.ID {
			run = ds[0].Run.ID
		}
	}
	return dir, dead, live, run
}

func runState(t *testing.T, dir string, id int64) runstate.State {
	t.Helper()
	s, err := db.Open(context.Background(), "sqlite://"+datadir.Paths{Dir: dir}.DB())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Run(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r.State
}

func TestRecover(t *testing.T) {
	dir, dead, live, runID := deadDaemonFixture(t)

	out, errOut, code := run(t, "", "recover", "--data-dir", dir, "--dry-run", "-o", "json")
	var res RecoverResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("recover --dry-run: exit %d, %q %q", code, out, errOut)
	}
	if !res.DryRun || len(res.Changes) != 1 || res.Changes[0].To != "pending" || res.Servers[0] != itoa64(dead.ID) {
		t.Fatalf("dry run = %+v", res)
	}
	if st := runState(t, dir, runID); st != runstate.Sent {
		t.Fatalf("a dry run changed the run to %s", st)
	}
	// The live daemon is refused without --force.
	_, errOut, code = run(t, "", "recover", "--data-dir", dir, "--server", itoa64(live.ID))
	if code != ExitConflict || !strings.Contains(errOut, "alive") {
		t.Fatalf("recover --server LIVE: exit %d, %q", code, errOut)
	}
	_, _, code = run(t, "", "recover", "--data-dir", dir, "--server", "99")
	if code != ExitNotFound {
		t.Fatalf("recover --server 99: exit %d, want %d", code, ExitNotFound)
	}
	out, errOut, code = run(t, "", "recover", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "sent") || !strings.Contains(errOut, "recovered: 1 requeued") {
		t.Fatalf("recover: exit %d, %q %q", code, out, errOut)
	}
	if st := runState(t, dir, runID); st != runstate.Pending {
		t.Fatalf("after recover the run is %s, want pending", st)
	}
	// Nothing left to do; the live daemon's run was never touched.
	_, errOut, _ = run(t, "", "recover", "--data-dir", dir)
	if !strings.Contains(errOut, "recovered: nothing") {
		t.Fatalf("second recover: %q", errOut)
	}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
