package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/sqlite"
	"github.com/scirectl/scirectl/runstate"
)

// TestDispatchMatchesSQLite drives the PostgreSQL store and the SQLite store
// (the reference) through the same random sequence of claims, acks and
// reports — unknown ids, other clients' runs, repeated ids, states an agent
// may not report, calls reporting a run twice — with cancels and lease
// sweeps between them, and requires the same answer from both at every
// step and the same runs at the end: the batch statements of this driver
// must mean exactly what one statement per run meant.
func TestDispatchMatchesSQLite(t *testing.T) {
	ctx := context.Background()
	pg := open(t)
	lite, err := sqlite.OpenFile(ctx, filepath.Join(t.TempDir(), "ref.db"), "OFF")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	stores := []db.Store{lite, pg}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 42))

	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tick := func() time.Time { at = at.Add(time.Millisecond); return at }
	// both runs fn on each store and requires equal results.
	both := func(step string, fn func(s db.Store) any) {
		t.Helper()
		var want any
		for i, s := range stores {
			got := fn(s)
			if i == 0 {
				want = got
			} else if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s:\n  sqlite:   %+v\n  postgres: %+v", step, want, got)
			}
		}
	}

	var clients []int64
	for _, name := range []string{"a", "b", "c"} {
		both("register "+name, func(s db.Store) any {
			c, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp-" + name, Name: name, Hostname: name, At: at})
			if err == nil {
				c, err = s.SetClientStatus(ctx, c.ID, db.ClientActive)
			}
			if err != nil {
				t.Fatal(err)
			}
			if s == pg {
				clients = append(clients, c.ID)
			}
			return c.ID
		})
	}
	var jobs, runs []int64       // every job and run id so far
	owner := map[int64][]int64{} // client id: its run ids
	decide := func(j db.Job, _ int64) (bool, string) {
		if strings.HasPrefix(j.Name, "deny") {
			return false, "no rule allows " + j.Name
		}
		return true, ""
	}
	pick := func(c int64) int64 { // mostly one of c's runs, sometimes another's or an unknown one
		switch mine := owner[c]; {
		case len(runs) == 0 || rng.IntN(60) == 0:
			return 1_000_000 + rng.Int64N(10)
		case len(mine) == 0 || rng.IntN(60) == 0:
			return runs[rng.IntN(len(runs))]
		case rng.IntN(3) > 0: // a recent run: more likely to be in flight
			return mine[max(0, len(mine)-1-rng.IntN(8))]
		default:
			return mine[rng.IntN(len(mine))]
		}
	}
	// outcome counts what the calls did, to show the test did something.
	outcome := map[string]int{}
	states := []runstate.State{runstate.Running, runstate.Succeeded, runstate.Failed, runstate.Running, runstate.Succeeded, "sent"}

	for step := 0; step < 600; step++ {
		now := tick()
		c := clients[rng.IntN(len(clients))]
		switch op := rng.IntN(20); {
		case op < 4: // submit
			name := fmt.Sprint("job", step)
			switch rng.IntN(8) {
			case 0:
				name = fmt.Sprint("deny", step)
			case 1:
				name = fmt.Sprint("expiring", step)
			}
			targets := slices.Clone(clients)
			rng.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
			targets = targets[:1+rng.IntN(len(targets))]
			nj := db.NewJob{Name: name, Interpreter: "/bin/sh", Script: "true", Priority: rng.IntN(3), SubmittedBy: "admin",
				ClientIDs: targets, CreatedAt: now, MaxAttempts: rng.IntN(3)}
			if strings.HasPrefix(name, "expiring") {
				nj.ExpiresAt = now.Add(5 * time.Millisecond)
			}
			both(fmt.Sprintf("step %d: submit %s to %v", step, name, targets), func(s db.Store) any {
				j, err := s.SubmitJob(ctx, nj)
				if err != nil {
					t.Fatal(err)
				}
				if s == pg {
					jobs = append(jobs, j.ID)
					rs, err := s.Runs(ctx, j.ID)
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range rs {
						runs = append(runs, r.ID)
						owner[r.ClientID] = append(owner[r.ClientID], r.ID)
					}
				}
				return []any{j.ID, j.Name, j.Targets, j.Counts, j.ExpiresAt, j.MaxAttempts}
			})
		case op < 9: // claim
			max := 1 + rng.IntN(6)
			both(fmt.Sprintf("step %d: claim %d for %d", step, max, c), func(s db.Store) any {
				ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: c, Max: max, At: now, Lease: 50 * time.Millisecond, ServerID: 7, Decide: decide})
				var got []string
				for _, d := range ds {
					got = append(got, fmt.Sprintf("run %d job %d %s attempt %d lease %v", d.Run.ID, d.Job.ID, d.Run.State, d.Run.Attempts, d.Run.LeaseUntil))
				}
				return []any{got, errClass(err)}
			})
		case op < 13: // ack
			ids := make([]int64, 1+rng.IntN(5))
			for i := range ids {
				ids[i] = pick(c)
			}
			if rng.IntN(4) == 0 {
				ids = append(ids, ids[0]) // a repeat in one call
			}
			both(fmt.Sprintf("step %d: ack %v by %d", step, ids, c), func(s db.Store) any {
				res, err := s.AckRuns(ctx, c, ids, now)
				if s == pg {
					outcome[fmt.Sprintf("ack: %d acknowledged, %d stale, err %q", min(res.Acknowledged, 1), min(len(res.Stale), 1), errClass(err))]++
				}
				return []any{res.Acknowledged, res.Stale, errClass(err)}
			})
		case op < 18: // report
			reps := make([]db.Report, 1+rng.IntN(5))
			for i := range reps {
				st := states[rng.IntN(len(states))]
				r := db.Report{RunID: pick(c), State: st, Output: fmt.Sprint("out ", step, i), Truncated: rng.IntN(2) == 0}
				if st != runstate.Running {
					code := rng.IntN(3)
					r.ExitCode, r.Finished, r.Reason = &code, now.Add(-time.Microsecond), fmt.Sprint("why ", i)
				}
				if rng.IntN(2) == 0 {
					r.StartedAt = now.Add(-time.Duration(1+rng.IntN(100)) * time.Microsecond)
				}
				reps[i] = r
			}
			if rng.IntN(4) == 0 { // running then final for one run, in one call
				fin := reps[0]
				fin.State, fin.ExitCode = runstate.Succeeded, new(int)
				reps[0].State = runstate.Running
				reps = append(reps, fin)
			}
			both(fmt.Sprintf("step %d: report %+v by %d", step, reps, c), func(s db.Store) any {
				res, err := s.ReportRuns(ctx, c, reps, now)
				if s == pg {
					for _, r := range res {
						outcome[fmt.Sprintf("report: accepted %v, note %v", r.Accepted, r.Note != "")]++
					}
					if err != nil {
						outcome["report: "+errClass(err)]++
					}
				}
				return []any{res, errClass(err)}
			})
		case op < 19: // an operator cancels a job
			if len(jobs) == 0 {
				continue
			}
			j := jobs[rng.IntN(len(jobs))]
			both(fmt.Sprintf("step %d: cancel job %d", step, j), func(s db.Store) any {
				ch, err := s.CancelJob(ctx, j, now, "cancelled by test")
				return []any{changes(ch), errClass(err)}
			})
		default: // leases end, lost runs, expiry
			both(fmt.Sprintf("step %d: sweep", step), func(s db.Store) any {
				ch, err := s.Sweep(ctx, db.SweepOptions{At: now, Grace: time.Millisecond})
				return []any{changes(ch), errClass(err)}
			})
		}
	}
	t.Logf("outcomes: %v", outcome)
	for _, j := range jobs {
		both(fmt.Sprintf("runs of job %d at the end", j), func(s db.Store) any {
			rs, err := s.Runs(ctx, j)
			if err != nil {
				t.Fatal(err)
			}
			for i := range rs {
				rs[i].ClientName = ""
			}
			return rs
		})
	}
}

// errClass is what callers may branch on in an error.
func errClass(err error) string {
	for _, e := range []error{db.ErrNotFound, db.ErrConflict, db.ErrInvalid} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

// changes renders changes in run order.
func changes(ch []db.Change) []string {
	var out []string
	for _, c := range ch {
		out = append(out, fmt.Sprintf("%+v", c))
	}
	slices.Sort(out)
	return out
}
