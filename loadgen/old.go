package loadgen

// Retention under load (Options.Old): a history of old final jobs,
// preloaded straight into the store, which the server's cleaner deletes
// while the agents claim their jobs; each agent.getJobs is timed, and the
// calls made while the cleaner's pass ran are told from the others by the
// pass's audit record.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/maintenance"
	"github.com/scirectl/scirectl/runstate"
)

// OldAge is how old the preloaded history is: older than any retention
// the bench's server would keep by default (90 days).
const OldAge = 365 * 24 * time.Hour

// oldChunk is how many old jobs one transaction of the preload writes
// (and one claim takes, and one report ends).
const oldChunk = 1000

// preloadOld writes the history straight into the store: Old jobs, each
// created OldAge ago with one run for a client that never polls, claimed
// and reported succeeded at that time.
func (b *bench) preloadOld(ctx context.Context, store db.Store) error {
	start := time.Now()
	fp := make([]byte, 32)
	if _, err := rand.Read(fp); err != nil {
		return err
	}
	name := "bench-old-" + b.runID
	at := time.Now().Add(-OldAge).UTC()
	c, err := store.RegisterClient(ctx, db.ClientRegistration{Fingerprint: hex.EncodeToString(fp), Name: name,
		Hostname: name, OS: "none", Arch: "none", Version: "bench", Mode: db.ModePoll, At: at})
	if err != nil {
		return fmt.Errorf("preload history: client: %w", err)
	}
	if _, err := store.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
		return fmt.Errorf("preload history: client: %w", err)
	}
	done := 0
	stopProgress := b.every(5*time.Second, func() {
		b.printf("preloading the history: %d/%d old jobs (%s)", done, b.o.Old, time.Since(start).Round(time.Second))
	})
	defer stopProgress()
	code := 0
	for done < b.o.Old {
		n := min(oldChunk, b.o.Old-done)
		js := make([]db.NewJob, n)
		for i := range js {
			js[i] = db.NewJob{Name: "bench-history", Permission: "run", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "admin",
				CreatedAt: at, Targets: []string{name}, ClientIDs: []int64{c.ID}}
		}
		if _, err := store.SubmitJobs(ctx, js, nil); err != nil {
			return fmt.Errorf("preload history: %w", err)
		}
		ds, err := store.ClaimRuns(ctx, db.Claim{ClientID: c.ID, Max: n, At: at, Lease: time.Hour})
		if err != nil {
			return fmt.Errorf("preload history: claim: %w", err)
		}
		reps := make([]db.Report, len(ds))
		for i, d := range ds {
			reps[i] = db.Report{RunID: d.Run.ID, State: runstate.Succeeded, ExitCode: &code, StartedAt: at, Finished: at}
		}
		if _, err := store.ReportRuns(ctx, c.ID, reps, at); err != nil {
			return fmt.Errorf("preload history: report: %w", err)
		}
		done += n
	}
	b.res.OldPreloadSeconds = time.Since(start).Seconds()
	b.printf("preloaded %d old jobs in %s", b.o.Old, time.Since(start).Round(time.Millisecond))
	return nil
}

// Clean is what the server's cleaner did during a run, from the audit
// records of its passes (operation cleaner.clean), or, for a pass that had
// not ended when the measurement did, from its batches seen at the gate.
type Clean struct {
	Passes int    `json:"passes"`
	Detail string `json:"detail"` // the last pass's: "deleted N jobs, M runs, K audit rows; P pages given back in 1m2s"
	// Ended is false when the (last) pass still ran at the end of the
	// measurement: its start is when its batches were first seen at the
	// gate (ops.list, every watchEvery), its end the measurement's.
	Ended bool `json:"ended"`
	// StartSeconds and EndSeconds place the passes in the measurement,
	// from its start (the first pass's start, the last's end).
	StartSeconds float64 `json:"start_seconds"`
	EndSeconds   float64 `json:"end_seconds"`
}

// cleanWindows reads the cleaner's passes from the audit trail: when each
// ran, from its record's time (its end) and the duration that ends its
// detail ("… in 1m2.5s"). The time comes to the second (an XML-RPC
// dateTime): the pass ended within the second after it, and the window
// takes that second in.
func (b *bench) cleanWindows(ctx context.Context) ([][2]time.Time, []string, error) {
	var es []api.AuditEntry
	if err := b.op.Call(ctx, api.MethodAuditList, &es, map[string]any{"operation": maintenance.AuditClean, "limit": 100}); err != nil {
		return nil, nil, fmt.Errorf("the cleaner's passes (audit.list): %w", err)
	}
	var ws [][2]time.Time
	var details []string
	for i := len(es) - 1; i >= 0; i-- { // oldest first
		e := es[i]
		k := strings.LastIndex(e.Detail, " in ")
		if k < 0 {
			continue
		}
		took, err := time.ParseDuration(e.Detail[k+len(" in "):])
		if err != nil {
			continue
		}
		ws = append(ws, [2]time.Time{e.At.Add(-took), e.At.Add(time.Second)})
		details = append(details, e.Detail)
	}
	return ws, details, nil
}

// watchEvery is how often watchCleaner looks at the gate.
const watchEvery = 200 * time.Millisecond

// watchCleaner looks at the gate (ops.list) every watchEvery until stop
// is called, and returns the times it saw a batch of the cleaner there
// (running or waiting): a pass that has not ended has no audit record yet.
func (b *bench) watchCleaner(ctx context.Context) (stop func() []time.Time) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan []time.Time, 1)
	go func() {
		var seen []time.Time
		t := time.NewTicker(watchEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				done <- seen
				return
			case <-t.C:
			}
			// The time the call was sent: the gate was seen after it, and
			// a batch seen belongs to a pass that ended, if it did, after
			// it (its audit record's time).
			sent := time.Now()
			var ops []api.Op
			if b.op.Call(ctx, api.MethodOpsList, &ops) != nil {
				continue
			}
			for _, o := range ops {
				if o.Name == maintenance.AuditClean {
					seen = append(seen, sent)
					break
				}
			}
		}
	}()
	return func() []time.Time {
		cancel()
		return <-done
	}
}

// collectClean splits the agents' agent.getJobs calls into those made
// while a pass of the cleaner ran and the others. seen are the times the
// cleaner was seen at the gate, end the measurement's end.
func (b *bench) collectClean(ctx context.Context, start, end time.Time, seen []time.Time) {
	r := b.res
	ws, details, err := b.cleanWindows(ctx)
	if err != nil {
		b.printf("warning: %v", err)
		return
	}
	ended := true
	// Sightings after the last pass that ended belong to one that did not.
	var last time.Time
	if len(ws) > 0 {
		last = ws[len(ws)-1][1]
	}
	for _, at := range seen {
		if at.After(last) {
			ws = append(ws, [2]time.Time{at, end})
			details = append(details, "the pass had not ended when the measurement did")
			ended = false
			break
		}
	}
	var all, during, outside []time.Duration
	for _, a := range b.agents {
		for _, g := range a.gets {
			all = append(all, g.d)
			at := time.Unix(0, g.at)
			in := false
			for _, w := range ws {
				in = in || !at.Before(w[0]) && !at.After(w[1])
			}
			if in {
				during = append(during, g.d)
			} else {
				outside = append(outside, g.d)
			}
		}
	}
	l := distribution(all)
	r.GetJobsLatency, r.GetJobsCalls = &l, len(all)
	if len(ws) == 0 {
		if b.o.Old > 0 {
			b.printf("warning: the cleaner did not run within the measurement (its first pass comes a minute after the server starts): measure longer (--duration)")
		}
		return
	}
	if !ended {
		b.printf("warning: the cleaner's pass had not ended when the measurement did: measure longer (--duration) to see all of it")
	}
	d, o := distribution(during), distribution(outside)
	r.GetJobsLatencyCleaning, r.GetJobsCallsCleaning = &d, len(during)
	r.GetJobsLatencyNotCleaning, r.GetJobsCallsNotCleaning = &o, len(outside)
	r.Clean = &Clean{Passes: len(ws), Detail: details[len(details)-1], Ended: ended,
		StartSeconds: ws[0][0].Sub(start).Seconds(), EndSeconds: ws[len(ws)-1][1].Sub(start).Seconds()}
}
