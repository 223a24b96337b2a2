package loadgen

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
)

// chunk is a run of consecutive job numbers submitted in one request; job
// number i targets agent i mod Agents.
type chunk struct{ first, n int }

// noopJob is the job.submit argument of a bench job named name for a
// client id.
func noopJob(clientID, name string) map[string]any {
	return map[string]any{"script": "true", "name": name, "targets": []string{clientID}}
}

// submitter sends chunks of jobs, recording the accepted ones.
func (b *bench) submitter(ctx context.Context, chunks <-chan chunk, wg *sync.WaitGroup) {
	defer wg.Done()
	var recs []submitRec
	defer func() {
		b.mu.Lock()
		b.subs = append(b.subs, recs...)
		b.mu.Unlock()
	}()
	for ch := range chunks {
		if ctx.Err() != nil {
			continue // drain the channel so the feeder ends
		}
		ids := make([]string, ch.n)
		for k := range ch.n {
			a := b.agents[(ch.first+k)%len(b.agents)]
			a.assigned.Add(1)
			ids[k] = a.id
		}
		method := "system.multicall"
		if ch.n == 1 {
			method = "job.submit"
		}
		sent := time.Now()
		jobIDs, kinds, err := submitJobs(ctx, b.op, ids, "bench-noop")
		b.count(method, "", 1)
		if err != nil {
			b.count(method, errKind(err), int64(ch.n))
			for k := range ch.n {
				b.agents[(ch.first+k)%len(b.agents)].assigned.Add(-1)
			}
			continue
		}
		for k, id := range jobIDs {
			if id == 0 {
				b.count("job.submit", kinds[k], 1)
				b.agents[(ch.first+k)%len(b.agents)].assigned.Add(-1)
				continue
			}
			recs = append(recs, submitRec{job: id, sent: sent.UnixNano()})
			b.submitted.Add(1)
		}
	}
}

// submitJobs submits one no-op job named name per target client: a plain
// job.submit for one, a system.multicall of job.submit calls for several.
// It returns each job's id, or 0 and the kind of fault for a refused one.
func submitJobs(ctx context.Context, op *client.Client, targets []string, name string) ([]int64, []string, error) {
	ids := make([]int64, len(targets))
	kinds := make([]string, len(targets))
	if len(targets) == 1 {
		var r api.SubmitResult
		if err := op.Call(ctx, "job.submit", &r, noopJob(targets[0], name)); err != nil {
			if api.FaultCode(err) == 0 {
				return nil, nil, err
			}
			kinds[0] = errKind(err)
			return ids, kinds, nil
		}
		id, err := strconv.ParseInt(r.ID, 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("job.submit: id %q: %w", r.ID, err)
		}
		ids[0] = id
		return ids, kinds, nil
	}
	calls := make([]any, len(targets))
	for i, t := range targets {
		calls[i] = map[string]any{"methodName": "job.submit", "params": []any{noopJob(t, name)}}
	}
	var out []any
	if err := op.Call(ctx, "system.multicall", &out, calls); err != nil {
		return nil, nil, err
	}
	if len(out) != len(targets) {
		return nil, nil, fmt.Errorf("system.multicall: %d results for %d calls", len(out), len(targets))
	}
	for i, e := range out {
		switch v := e.(type) {
		case []any: // [result]
			if len(v) == 1 {
				if m, ok := v[0].(map[string]any); ok {
					if s, ok := m["id"].(string); ok {
						if id, err := strconv.ParseInt(s, 10, 64); err == nil {
							ids[i] = id
							continue
						}
					}
				}
			}
			kinds[i] = "bad result"
		case map[string]any: // {faultCode, faultString}
			kinds[i] = fmt.Sprintf("fault %v", v["faultCode"])
		default:
			kinds[i] = "bad result"
		}
	}
	return ids, kinds, nil
}

// submitAll submits Jobs as fast as Submitters connections allow.
func (b *bench) submitAll(ctx context.Context) error {
	chunks := make(chan chunk, b.o.Submitters)
	var wg sync.WaitGroup
	for range b.o.Submitters {
		wg.Add(1)
		go b.submitter(ctx, chunks, &wg)
	}
	for first := 0; first < b.o.Jobs && ctx.Err() == nil; first += b.o.SubmitBatch {
		chunks <- chunk{first, min(b.o.SubmitBatch, b.o.Jobs-first)}
	}
	close(chunks)
	wg.Wait()
	return ctx.Err()
}

// submitPaced submits at Rate jobs/s until Jobs are submitted or Duration
// has passed. Jobs due at the same tick go in one request (up to
// SubmitBatch); when the server cannot keep up the pacer falls behind, and
// the achieved rate (submit_rate) says so.
func (b *bench) submitPaced(ctx context.Context) error {
	chunks := make(chan chunk, b.o.Submitters)
	var wg sync.WaitGroup
	for range b.o.Submitters {
		wg.Add(1)
		go b.submitter(ctx, chunks, &wg)
	}
	defer func() {
		close(chunks)
		wg.Wait()
	}()
	tick := max(time.Duration(float64(time.Second)/b.o.Rate), 5*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	issued := 0
	for {
		elapsed := time.Since(start)
		if b.o.Duration > 0 && elapsed >= b.o.Duration {
			return nil
		}
		due := int(elapsed.Seconds()*b.o.Rate) + 1
		if b.o.Jobs > 0 {
			due = min(due, b.o.Jobs)
		}
		for issued < due {
			n := min(due-issued, b.o.SubmitBatch)
			select {
			case chunks <- chunk{issued, n}:
			case <-ctx.Done():
				return ctx.Err()
			}
			issued += n
		}
		if b.o.Jobs > 0 && issued >= b.o.Jobs {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// preloadRemote builds the backlog on a remote server through the API: an
// idle agent (registered and accepted, never polling) and Pending jobs for
// it, SubmitBatch per system.multicall.
func (b *bench) preloadRemote(ctx context.Context) error {
	start := time.Now()
	name := "bench-idle-" + b.runID
	c, _, fp, err := b.newIdentity(name)
	if err != nil {
		return err
	}
	defer c.Close()
	if b.idleID, err = register(ctx, c, name, ""); err != nil {
		return err
	}
	if err := b.op.Call(ctx, "client.accept", nil, []string{fp}); err != nil {
		return fmt.Errorf("accept the idle client: %w", err)
	}
	b.printf("preloading a backlog of %d jobs through the API", b.o.Pending)
	done := 0
	last := time.Now()
	for done < b.o.Pending {
		n := min(b.o.SubmitBatch, b.o.Pending-done)
		targets := make([]string, n)
		for i := range targets {
			targets[i] = b.idleID
		}
		ids, kinds, err := submitJobs(ctx, b.op, targets, "bench-noop")
		if err != nil {
			return fmt.Errorf("preload: %w", err)
		}
		for i, id := range ids {
			if id == 0 {
				return fmt.Errorf("preload: job.submit: %s", kinds[i])
			}
		}
		done += n
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			b.printf("preloading the backlog: %d/%d jobs (%s)", done, b.o.Pending, time.Since(start).Round(time.Second))
		}
	}
	b.res.PreloadSeconds = time.Since(start).Seconds()
	return nil
}
