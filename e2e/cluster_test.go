package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/scirectl/scirectl/api"
	scclient "github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/internal/pgtest"
	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/pki"
)

// The cluster test's load. Job n targets real agent n/8 mod 24 when n is a
// multiple of 8, else light agent n mod 24: the real agents (processes
// running every job's script, with fsyncs at each step of their durable
// queue) manage only 50–100 runs/s together on two busy cores, the light
// ones many more, so that tens of thousands of jobs fit in about a minute
// (the submissions, some 300 jobs/s, are then what sets the pace).
const (
	clusterDaemons    = 3
	clusterAgents     = 24    // real agents: `scirectl client poll` processes
	clusterLight      = 24    // light agents: in this process, ack and report without running anything
	clusterLightBatch = 50    // agent.getJobs max of a light agent
	clusterJobs       = 20000 // submitted while the agents work (the tail comes on top)
	clusterRealEvery  = 8     // one job in 8 is for a real agent
	clusterTail       = 10    // jobs per real agent submitted after the kill
	clusterGhostJobs  = 20    // the ghost's, sent by the doomed daemon and never acknowledged
	clusterSubmitters = 4     // concurrent submitting connections
	clusterBatch      = 100   // job.submit calls per system.multicall
	clusterSeedEnv    = "SCIRE_CLUSTER_SEED"
	clusterJobsEnv    = "SCIRE_CLUSTER_JOBS" // another load by hand
)

// clusterConfig is every daemon's server.yaml. job.submit is a modifier by
// default: each one would take the cluster-wide gate exclusively, stopping
// every agent call on all three daemons, and 20,000 of them would take
// minutes; a deployment at this scale lets submits run alongside the agents
// (docs/postgres.md). The cluster-wide exclusion itself is tested in
// server/cluster_test.go, and here by a stream of other modifiers
// (group.create) sent to every daemon during the load.
const clusterConfig = "gate:\n  classes:\n    job.submit: non-modifier\n"

// clusterTarget is the client name job n targets.
func clusterTarget(n int) string {
	if n%clusterRealEvery == 0 {
		return fmt.Sprintf("cluster-agent-%02d", (n/clusterRealEvery)%clusterAgents)
	}
	return fmt.Sprintf("cluster-light-%02d", n%clusterLight)
}

// TestClusterFailoverLosesNothing runs three `scirectl serve` daemons on one
// PostgreSQL database (docs/architecture.md; issue 6) with 48 agents spread over
// them — 24 real agents (`scirectl client poll`, each listing the three
// daemons with --server in its own rotated order) and 24 light ones in this
// process (agent calls through the client package, with the same rotated
// failover lists, acknowledging and reporting without running anything) —
// and 20,000 jobs submitted while they work, plus a stream of modifiers.
// Once a random share of the work is done, one daemon is killed with
// SIGKILL; then 240 more jobs for the real agents are submitted. Checked:
//
//   - every agent that listed the dead daemon first moves on to its next
//     --server and keeps working: the real ones get runs from live daemons
//     after the kill, what they had acknowledged they run, and their reports
//     reach a live daemon;
//   - the runs the dead daemon sent that no agent acknowledged are taken
//     over by a live daemon's rescuer once its heartbeat is 30s old, and
//     dispatched again. To be sure there are some, an in-process "ghost"
//     agent takes runs from the doomed daemon just before the kill and does
//     not acknowledge them; after the takeover it gets them again (attempt
//     2) from a live daemon;
//   - no run is handed to two agents, nor twice to one, in one attempt; no
//     run is acknowledged twice;
//   - at the end every run succeeded; each real agent's run was executed
//     exactly once, by its own agent (the jobs record their run ids), and
//     is in that agent's done.log exactly once.
//
// The daemon killed and the moment come from a seed, logged first;
// SCIRE_CLUSTER_SEED=<seed> replays them.
func TestClusterFailoverLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test (three daemons, tens of thousands of jobs, kill -9): skipped with -short")
	}
	began := time.Now()
	jobs := clusterJobs
	if s := os.Getenv(clusterJobsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < clusterRealEvery*clusterAgents {
			t.Fatalf("%s=%q: want a number of jobs ≥ %d", clusterJobsEnv, s, clusterRealEvery*clusterAgents)
		}
		jobs = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(clusterSeedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", clusterSeedEnv, s, err)
		}
		seed = v
	}
	rng := rand.New(rand.NewPCG(seed, seed^0xc105ed))
	victim := rng.IntN(clusterDaemons)
	killShare := 0.15 + 0.25*rng.Float64() // of the jobs succeeded when the daemon is killed
	t.Logf("cluster seed %d (replay: %s=%d go test -run TestClusterFailoverLosesNothing ./e2e): %d jobs, %d real and %d light agents; "+
		"kill -9 daemon %d once %.0f%% of the jobs succeeded", seed, clusterSeedEnv, seed, jobs, clusterAgents, clusterLight, victim, 100*killShare)
	defer func() {
		if t.Failed() {
			t.Logf("failed with seed %d", seed)
		}
	}()

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	url := pgtest.Start(t)
	pg, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	// PostgreSQL itself is not crashed here, so its commits need not wait
	// for the WAL flush: what a daemon committed is seen by the others at
	// once either way, and a killed daemon loses nothing by it. On a busy
	// two-core machine this makes the test some 30% faster.
	if _, err := pg.Exec(ctx, "ALTER DATABASE "+pg.Config().ConnConfig.Database+" SET synchronous_commit = off"); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	daemons := startPGCluster(t, url, dir, clusterDaemons, clusterConfig)
	urls := make([]string, clusterDaemons)
	for i, d := range daemons {
		urls[i] = d.url
	}
	rotated := func(i int) []string {
		var out []string
		for k := range clusterDaemons {
			out = append(out, urls[(i+k)%clusterDaemons])
		}
		return out
	}
	var survivors []string
	for i, u := range urls {
		if i != victim {
			survivors = append(survivors, u)
		}
	}
	caFile := daemons[0].caFile()
	pool, err := pki.CertPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	token := daemons[0].token(t)
	operator := func(servers ...string) *scclient.Client {
		c, err := scclient.New(scclient.Options{Servers: servers, RootCAs: pool, Token: token, Timeout: 2 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	op := operator(urls...)
	var servers []api.ServerInfo
	if err := op.Call(ctx, "server.list", &servers); err != nil || len(servers) != clusterDaemons {
		t.Fatalf("server.list = %+v, %v; want %d daemons", servers, err, clusterDaemons)
	}
	var st api.ServerStatus
	if err := operator(urls[victim]).Call(ctx, "server.status", &st); err != nil {
		t.Fatal(err)
	}
	victimID, err := strconv.ParseInt(st.ID, 10, 64)
	if err != nil {
		t.Fatalf("server.status: id %q", st.ID)
	}
	t.Logf("daemons up at %v (%v after the start); the victim is daemon %d, server id %d",
		urls, time.Since(began).Round(time.Millisecond), victim, victimID)

	// The real agents: agent i lists daemon i mod 3 first, then the next ones.
	agents := make([]*crashAgent, clusterAgents)
	firstServer := make([]int, clusterAgents)
	for i := range agents {
		a := &crashAgent{name: fmt.Sprintf("cluster-agent-%02d", i), stateDir: filepath.Join(dir, fmt.Sprintf("agent-%02d", i))}
		if err := os.MkdirAll(a.stateDir, 0o700); err != nil {
			t.Fatal(err)
		}
		args := []string{"client", "poll"}
		for _, u := range rotated(i) {
			args = append(args, "--server", u)
		}
		args = append(args, "--ca", caFile, "--state-dir", a.stateDir, "--name", a.name, "--interval", "200ms", "--max-jobs", "50")
		a.proc = start(t, []string{"CRASH_EXEC_LOG=" + a.execLog()}, args...)
		agents[i], firstServer[i] = a, i%clusterDaemons
	}
	// The light agents and the ghost: identities in this process.
	ledger := &clusterLedger{handed: map[[2]int64]string{}, acked: map[int64]string{}}
	lights := make([]*ghost, clusterLight)
	for i := range lights {
		lights[i] = newGhost(t, pool, fmt.Sprintf("cluster-light-%02d", i), rotated(i+1)...)
	}
	ghost := newGhost(t, pool, "cluster-ghost", urls[victim])
	eventually(t, 60*time.Second, "the agents to register", func() bool {
		var cs []api.Client
		if err := op.Call(ctx, "client.list", &cs, map[string]any{"status": "pending"}); err != nil {
			t.Fatal(err)
		}
		return len(cs) == clusterAgents+clusterLight+1
	})
	names := []string{"cluster-ghost"}
	for _, a := range agents {
		names = append(names, a.name)
	}
	for _, l := range lights {
		names = append(names, l.name)
	}
	if err := op.Call(ctx, "client.accept", nil, names); err != nil {
		t.Fatal(err)
	}
	var lightWG sync.WaitGroup
	for _, l := range lights {
		lightWG.Go(func() { l.run(ctx, ledger) })
	}

	// The ghost's jobs, taken from the victim and left unacknowledged.
	for i := range clusterGhostJobs {
		if err := op.Call(ctx, "job.submit", nil, map[string]any{"name": fmt.Sprintf("ghost-%02d", i),
			"script": crashScript, "targets": []string{"cluster-ghost"}}); err != nil {
			t.Fatal(err)
		}
	}
	ghostRuns := ghost.getJobs(t, urls[victim])
	if len(ghostRuns) != clusterGhostJobs {
		t.Fatalf("the ghost got %d runs from daemon %d, want %d", len(ghostRuns), victim, clusterGhostJobs)
	}

	// Modifiers all along, on every daemon: each takes the cluster-wide
	// gate exclusively for a moment. Those sent to the victim may fail once
	// it is killed; any other failure is a failure.
	var killedFlag atomic.Bool
	modErr := make(chan error, 1)
	var mods atomic.Int64
	go func() {
		clients := make([]*scclient.Client, clusterDaemons)
		for i := range clients {
			c, err := scclient.New(scclient.Options{Servers: urls[i : i+1], RootCAs: pool, Token: token, Timeout: time.Minute})
			if err != nil {
				modErr <- err
				return
			}
			defer c.Close()
			clients[i] = c
		}
		for n := 0; ctx.Err() == nil; n++ {
			i := n % clusterDaemons
			if i == victim && killedFlag.Load() {
				continue
			}
			err := clients[i].Call(ctx, "group.create", nil, "client", fmt.Sprintf("cluster-mod-%d", n))
			if err != nil && ctx.Err() == nil && !(i == victim && killedFlag.Load()) {
				modErr <- fmt.Errorf("group.create on daemon %d: %w", i, err)
				return
			}
			if err == nil {
				mods.Add(1)
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
		modErr <- nil
	}()

	// The load, submitted while the agents work, to the daemons that stay.
	submitStart := time.Now()
	var submitted atomic.Int64
	submitDone := make(chan error, 1)
	go func() {
		submitDone <- submitCluster(ctx, 0, jobs, operator, survivors, &submitted, func(n int) (string, string) {
			return fmt.Sprintf("cluster-%05d", n), clusterTarget(n)
		})
	}()

	// Kill the victim once its share of the work is done.
	killAt := int(killShare * float64(jobs))
	for {
		n := countRuns(t, pg, `state = 'succeeded'`)
		if n >= killAt {
			break
		}
		select {
		case err := <-submitDone:
			submitDone <- err
			if err != nil {
				t.Fatalf("submitting: %v", err)
			}
		case <-time.After(200 * time.Millisecond):
		}
		if time.Since(submitStart) > 3*time.Minute {
			t.Fatalf("only %d of %d runs succeeded 3 minutes into the load; states %s", n, jobs, pgStateCounts(t, pg))
		}
	}
	killedFlag.Store(true)
	killNine(t, daemons[victim].proc)
	killed := time.Now()
	orphans := countRuns(t, pg, fmt.Sprintf(`state = 'sent' AND server_id = %d`, victimID))
	t.Logf("kill -9 daemon %d %v into the load, %d jobs submitted by then; runs: %s; %d sent by it and not acknowledged (%d of them the ghost's)",
		victim, killed.Sub(submitStart).Round(time.Millisecond), submitted.Load(), pgStateCounts(t, pg), orphans, clusterGhostJobs)

	// The ghost waits for the takeover, then reports its jobs.
	ghostDone := make(chan error, 1)
	var ghostAgain time.Time
	go func() {
		var err error
		ghostAgain, err = ghost.recover(ctx, survivors, ghostRuns)
		ghostDone <- err
	}()
	// Work for the real agents that only live daemons can hand out.
	tail := clusterTail * clusterAgents
	if err := submitCluster(ctx, 0, tail, operator, survivors, &submitted, func(n int) (string, string) {
		return fmt.Sprintf("tail-%05d", n), fmt.Sprintf("cluster-agent-%02d", n%clusterAgents)
	}); err != nil {
		t.Fatalf("submitting the tail: %v", err)
	}
	if err := <-submitDone; err != nil {
		t.Fatalf("submitting: %v", err)
	}
	t.Logf("%d jobs submitted in %v", jobs+tail, time.Since(submitStart).Round(time.Millisecond))

	total := jobs + tail + clusterGhostJobs
	deadline := time.Now().Add(4 * time.Minute)
	for {
		open := countRuns(t, pg, `state NOT IN ('succeeded', 'failed', 'denied', 'expired', 'cancelled')`)
		all := countRuns(t, pg, `true`)
		if open == 0 && all == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d runs of %d not final 4 minutes after the submission (seed %d); states %s", open, all, seed, pgStateCounts(t, pg))
		}
		time.Sleep(200 * time.Millisecond)
	}
	done := time.Since(submitStart)
	if err := <-ghostDone; err != nil {
		t.Fatal(err)
	}
	t.Logf("the ghost's %d runs, sent by the killed daemon and never acknowledged, were handed out again by a live daemon %v after the kill",
		clusterGhostJobs, ghostAgain.Sub(killed).Round(time.Millisecond))
	for _, a := range agents {
		eventually(t, 60*time.Second, a.name+"'s queue and outbox to empty", func() bool {
			return dirLen(t, filepath.Join(a.stateDir, "queue"))+dirLen(t, filepath.Join(a.stateDir, "outbox"))+
				dirLen(t, filepath.Join(a.stateDir, "running")) == 0
		})
	}
	stop()
	lightWG.Wait()
	if err := <-modErr; err != nil {
		t.Error(err)
	}
	for _, a := range agents {
		a.proc.stop(t)
	}
	t.Logf("all %d runs final %v after the first submission (%.0f runs/s), %v after the kill; %d modifiers (group.create) ran meanwhile",
		total, done.Round(time.Millisecond), float64(total)/done.Seconds(), time.Since(killed).Round(time.Millisecond), mods.Load())
	ledger.report(t, lights)

	checkClusterRuns(t, pg, total, agents, ledger, firstServer, victim, victimID, killed)
	took := false
	for i, d := range daemons {
		if i != victim && strings.Contains(d.log.String(), "took over a dead server's runs") {
			took = true
			t.Logf("daemon %d took over daemon %d's runs", i, victim)
		}
	}
	if !took {
		t.Errorf("no live daemon logged the takeover of daemon %d's runs", victim)
	}
	t.Logf("cluster test done in %v", time.Since(began).Round(time.Millisecond))
}

// checkClusterRuns compares the database with the agents' own records.
func checkClusterRuns(t *testing.T, pg *pgxpool.Pool, total int, agents []*crashAgent, ledger *clusterLedger,
	firstServer []int, victim int, victimID int64, killed time.Time) {
	t.Helper()
	errs := 0
	fail := func(format string, args ...any) {
		t.Helper()
		if errs++; errs <= 30 {
			t.Errorf(format, args...)
		}
	}
	defer func() {
		if errs > 0 {
			t.Errorf("%d problems in all", errs)
		}
	}()
	type runRow struct {
		id                  int64
		jobName, client     string
		state, reason       string
		attempts, exit      int64
		server, sent        int64
		output              string
		jobRuns, jobsOfName int64
	}
	rows, err := pg.Query(context.Background(), `SELECT r.id, j.name, c.name, r.state, r.reason, r.attempts,
			coalesce(r.exit_code, -1), coalesce(r.server_id, 0), coalesce(r.sent_at, 0), r.output,
			(SELECT count(*) FROM runs r2 WHERE r2.job_id = r.job_id), (SELECT count(*) FROM jobs j2 WHERE j2.name = j.name)
		FROM runs r JOIN jobs j ON j.id = r.job_id JOIN clients c ON c.id = r.client_id ORDER BY r.id`)
	if err != nil {
		t.Fatal(err)
	}
	var runs []runRow
	for rows.Next() {
		var r runRow
		if err := rows.Scan(&r.id, &r.jobName, &r.client, &r.state, &r.reason, &r.attempts, &r.exit,
			&r.server, &r.sent, &r.output, &r.jobRuns, &r.jobsOfName); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(runs) != total {
		fail("%d runs in the database, want %d", len(runs), total)
	}

	clientOf := map[int64]string{}
	perDaemon := map[int64]int{}
	again, ghosts, real := 0, 0, 0
	afterKill := map[string]map[int64]int{} // real agent → server → runs sent after the kill
	for _, r := range runs {
		clientOf[r.id] = r.client
		want := "cluster-ghost"
		switch kind, num, _ := strings.Cut(r.jobName, "-"); kind {
		case "cluster":
			n, _ := strconv.Atoi(num)
			want = clusterTarget(n)
		case "tail":
			n, _ := strconv.Atoi(num)
			want = fmt.Sprintf("cluster-agent-%02d", n%clusterAgents)
		}
		if r.client != want || r.jobRuns != 1 || r.jobsOfName != 1 {
			fail("run %d of job %s: client %s (want %s), %d runs in the job, %d jobs of that name; want 1 and 1",
				r.id, r.jobName, r.client, want, r.jobRuns, r.jobsOfName)
		}
		if r.state != "succeeded" || r.exit != 0 || r.output != fmt.Sprintf("run-%d\n", r.id) || r.attempts < 1 {
			fail("run %d (%s on %s): %s (reason %q), exit %d, %d attempts, output %q; want succeeded with exit 0 and run-%d",
				r.id, r.jobName, r.client, r.state, r.reason, r.exit, r.attempts, r.output, r.id)
		}
		if r.server == 0 {
			fail("run %d (%s on %s) has no serving daemon", r.id, r.jobName, r.client)
		}
		perDaemon[r.server]++
		if r.attempts > 1 {
			again++
		}
		if r.sent > killed.UnixNano() && r.server == victimID {
			fail("run %d sent by the killed daemon after its death", r.id)
		}
		switch {
		case r.client == "cluster-ghost":
			ghosts++
			if r.attempts != 2 || r.server == victimID {
				fail("ghost run %d: %d attempts, served by daemon id %d; want 2 attempts, the second from a live daemon (not %d)",
					r.id, r.attempts, r.server, victimID)
			}
		case strings.HasPrefix(r.client, "cluster-agent-"):
			real++
			if r.sent > killed.UnixNano() {
				if afterKill[r.client] == nil {
					afterKill[r.client] = map[int64]int{}
				}
				afterKill[r.client][r.server]++
			}
		default: // a light agent's: it acknowledged it once (the ledger)
			if ledger.acked[r.id] != r.client {
				fail("light run %d of %s acknowledged by %q", r.id, r.client, ledger.acked[r.id])
			}
		}
	}
	t.Logf("runs per serving daemon id: %v; %d runs handed out more than once; %d real agents' runs, %d ghost runs recovered",
		perDaemon, again, real, ghosts)

	// The victim's real agents failed over and kept working.
	for i, a := range agents {
		if firstServer[i] != victim {
			continue
		}
		n := 0
		for _, c := range afterKill[a.name] {
			n += c
		}
		if n == 0 {
			fail("%s (first --server: the killed daemon) got no run after the kill", a.name)
		}
		t.Logf("%s (first --server killed): runs sent after the kill, per daemon id: %v; failed calls logged: %d",
			a.name, afterKill[a.name], strings.Count(a.proc.log.String(), "server call failed"))
	}

	// Executions, as the jobs recorded them: each run once, by its agent.
	execs := map[int64][]string{}
	for _, a := range agents {
		for _, id := range a.executed(t) {
			execs[id] = append(execs[id], a.name)
		}
	}
	for id, who := range execs {
		if len(who) > 1 {
			fail("run %d executed %d times (by %v)", id, len(who), who)
		}
		if c, ok := clientOf[id]; !ok || who[0] != c {
			fail("run %d of client %q executed by %s", id, c, who[0])
		}
	}
	// Each real agent's done.log: exactly its client's runs, each once.
	doneBy := map[int64]string{}
	for _, a := range agents {
		ids, notes := a.doneLog(t)
		for id, note := range notes {
			fail("%s: done.log says run %d %s", a.name, id, note)
		}
		for _, id := range ids {
			if prev, ok := doneBy[id]; ok {
				fail("run %d in the done.log of %s and of %s", id, prev, a.name)
			}
			doneBy[id] = a.name
			if c := clientOf[id]; c != a.name {
				fail("%s: done.log has run %d of client %q", a.name, id, c)
			}
		}
	}
	for _, r := range runs {
		if !strings.HasPrefix(r.client, "cluster-agent-") {
			continue
		}
		if len(execs[r.id]) != 1 {
			fail("run %d (%s) executed %d times, want once", r.id, r.client, len(execs[r.id]))
		}
		if doneBy[r.id] != r.client {
			fail("run %d (%s) missing from %s's done.log", r.id, r.state, r.client)
		}
	}
}

// submitCluster submits jobs first..first+count-1 (named and targeted by
// job) in system.multicall batches from several connections, spread over
// the given daemons.
func submitCluster(ctx context.Context, first, count int, operator func(...string) *scclient.Client,
	daemons []string, submitted *atomic.Int64, job func(n int) (name, target string)) error {
	type batch struct{ first, n int }
	work := make(chan batch)
	errc := make(chan error, clusterSubmitters)
	var wg sync.WaitGroup
	for w := range clusterSubmitters {
		c := operator(daemons[w%len(daemons)])
		wg.Go(func() {
			failed := false
			for b := range work {
				if failed {
					continue
				}
				calls := make([]any, b.n)
				for k := range b.n {
					name, target := job(b.first + k)
					calls[k] = map[string]any{"methodName": "job.submit", "params": []any{map[string]any{
						"name": name, "script": crashScript, "targets": []string{target}}}}
				}
				var out []any
				if err := c.Call(ctx, "system.multicall", &out, calls); err != nil {
					errc <- fmt.Errorf("system.multicall of jobs %d..%d: %w", b.first, b.first+b.n-1, err)
					failed = true
					continue
				}
				for k, e := range out {
					if r, ok := e.([]any); !ok || len(r) != 1 {
						name, _ := job(b.first + k)
						errc <- fmt.Errorf("job %s: %v", name, e)
						failed = true
						break
					}
				}
				submitted.Add(int64(len(out)))
			}
		})
	}
	for n := first; n < first+count; n += clusterBatch {
		work <- batch{n, min(clusterBatch, first+count-n)}
	}
	close(work)
	wg.Wait()
	close(errc)
	return <-errc // the first error, or nil
}

// clusterLedger is what the light agents were handed and acknowledged.
type clusterLedger struct {
	mu     sync.Mutex
	handed map[[2]int64]string // (run, attempt) → agent
	acked  map[int64]string    // run → agent whose acknowledgement counted (not stale)
	dups   []string            // violations
}

func (l *clusterLedger) hand(agent string, run, attempt int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := [2]int64{run, attempt}
	if prev, ok := l.handed[k]; ok {
		l.dups = append(l.dups, fmt.Sprintf("run %d attempt %d handed to %s and to %s", run, attempt, prev, agent))
	}
	l.handed[k] = agent
}

func (l *clusterLedger) ack(agent string, run int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.acked[run]; ok {
		l.dups = append(l.dups, fmt.Sprintf("run %d acknowledged by %s and again by %s", run, prev, agent))
	}
	l.acked[run] = agent
}

func (l *clusterLedger) report(t *testing.T, lights []*ghost) {
	t.Helper()
	for i, d := range l.dups {
		if i == 20 {
			t.Errorf("… %d in all", len(l.dups))
			break
		}
		t.Error(d)
	}
	var calls, failed, stale int64
	for _, g := range lights {
		calls += g.calls.Load()
		failed += g.failed.Load()
		stale += g.stale.Load()
	}
	t.Logf("light agents: %d runs handed out, %d acknowledged, %d stale; %d calls, %d failed (the killed daemon's)",
		len(l.handed), len(l.acked), stale, calls, failed)
}

// ghost is an agent in this process: an identity and raw agent calls. The
// light agents are ghosts that run the protocol (run); the ghost itself
// only takes runs and, after the takeover, takes them again and reports
// them (getJobs, recover).
type ghost struct {
	name                 string
	pool                 *x509.CertPool
	cert                 tls.Certificate
	rpc                  *scclient.Client // on its servers, in failover order
	calls, failed, stale atomic.Int64
}

// newGhost makes an identity and registers it on the first server.
func newGhost(t *testing.T, pool *x509.CertPool, name string, servers ...string) *ghost {
	t.Helper()
	certPEM, keyPEM, err := pki.SelfSigned(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	g := &ghost{name: name, pool: pool, cert: pair}
	if g.rpc, err = g.newClient(servers...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.rpc.Close)
	var res struct {
		Status string `xmlrpc:"status"`
	}
	if err := g.rpc.Call(context.Background(), "agent.register", &res,
		map[string]any{"hostname": name, "name": name, "os": "linux", "arch": "amd64", "version": "test"}); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *ghost) newClient(servers ...string) (*scclient.Client, error) {
	return scclient.New(scclient.Options{Servers: servers, RootCAs: g.pool, Certificate: &g.cert, Timeout: time.Minute})
}

// call is one agent call; a failure (a daemon killed under it) is counted,
// and the next call goes to the next server.
func (g *ghost) call(ctx context.Context, method string, reply any, args ...any) error {
	g.calls.Add(1)
	err := g.rpc.Call(ctx, method, reply, args...)
	if err != nil && ctx.Err() == nil {
		g.failed.Add(1)
	}
	return err
}

// run is a light agent: getJobs, ack, report succeeded (with the output a
// real agent would send), until ctx ends. A failed ack or report is sent
// again, to the next server: both are idempotent.
func (g *ghost) run(ctx context.Context, ledger *clusterLedger) {
	retry := func(method string, reply any, arg any) bool {
		for ctx.Err() == nil {
			if err := g.call(ctx, method, reply, arg); err == nil {
				return true
			} else if f := api.FaultCode(err); f != 0 {
				ledger.mu.Lock()
				ledger.dups = append(ledger.dups, fmt.Sprintf("%s: %s: %v", g.name, method, err))
				ledger.mu.Unlock()
				return false
			}
			time.Sleep(50 * time.Millisecond)
		}
		return false
	}
	// Between polls it waits 300–500ms unless the last one was full, as a
	// real agent with a short interval would: fewer, larger batches.
	full := false
	for ctx.Err() == nil {
		if !full {
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(300+rand.IntN(200)) * time.Millisecond):
			}
		}
		var docs []string
		err := g.call(ctx, "agent.getJobs", &docs, clusterLightBatch)
		full = err == nil && len(docs) == clusterLightBatch
		if err != nil || len(docs) == 0 {
			continue
		}
		ids := make([]string, len(docs))
		for i, d := range docs {
			j, err := jobxml.DecodeJob([]byte(d))
			if err != nil {
				ledger.mu.Lock()
				ledger.dups = append(ledger.dups, fmt.Sprintf("%s: bad job document: %v", g.name, err))
				ledger.mu.Unlock()
				return
			}
			ledger.hand(g.name, j.Run, int64(j.Attempt))
			ids[i] = strconv.FormatInt(j.Run, 10)
		}
		var ack struct {
			Acknowledged int      `xmlrpc:"acknowledged"`
			Stale        []string `xmlrpc:"stale"`
		}
		if !retry("agent.ackJobs", &ack, ids) {
			continue
		}
		var statuses []jobxml.Status
		zero := 0
		now := time.Now().UTC()
		for _, id := range ids {
			if slices.Contains(ack.Stale, id) {
				g.stale.Add(1)
				continue
			}
			run, _ := strconv.ParseInt(id, 10, 64)
			ledger.ack(g.name, run)
			statuses = append(statuses, jobxml.Status{Run: run, State: jobxml.StateSucceeded, Exit: &zero,
				Started: now, Finished: now, Output: fmt.Sprintf("run-%d\n", run)})
		}
		if len(statuses) == 0 {
			continue
		}
		doc, err := jobxml.EncodeStatuses(statuses)
		if err != nil {
			panic(err)
		}
		var rep []api.ReportResult
		retry("agent.reportStatus", &rep, string(doc))
	}
}

// getJobs takes the ghost's runs from a daemon, without acknowledging them.
func (g *ghost) getJobs(t *testing.T, server string) []int64 {
	t.Helper()
	c, err := g.newClient(server)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var docs []string
	if err := c.Call(context.Background(), "agent.getJobs", &docs, 1000); err != nil {
		t.Fatal(err)
	}
	var runs []int64
	for _, d := range docs {
		j, err := jobxml.DecodeJob([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, j.Run)
	}
	return runs
}

// recover polls the live daemons until every one of runs is handed out
// again (after the takeover of the dead daemon's runs), then acknowledges
// and reports them succeeded, as the jobs' scripts would have. It returns
// when they were handed out again.
func (g *ghost) recover(ctx context.Context, servers []string, runs []int64) (time.Time, error) {
	c, err := g.newClient(servers...)
	if err != nil {
		return time.Time{}, err
	}
	defer c.Close()
	want := map[int64]bool{}
	for _, r := range runs {
		want[r] = true
	}
	var got []int64
	deadline := time.Now().Add(2 * time.Minute)
	for len(got) < len(runs) {
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("ghost: %d of its %d runs handed out again 2 minutes after the kill", len(got), len(runs))
		}
		var docs []string
		if err := c.Call(ctx, "agent.getJobs", &docs, 1000); err != nil {
			return time.Time{}, fmt.Errorf("ghost: agent.getJobs: %w", err)
		}
		for _, d := range docs {
			j, err := jobxml.DecodeJob([]byte(d))
			if err != nil {
				return time.Time{}, err
			}
			if !want[j.Run] || j.Attempt != 2 {
				return time.Time{}, fmt.Errorf("ghost: got run %d attempt %d; want one of %v, attempt 2", j.Run, j.Attempt, runs)
			}
			got = append(got, j.Run)
		}
		if len(got) < len(runs) {
			time.Sleep(500 * time.Millisecond)
		}
	}
	again := time.Now()
	ids := make([]string, len(got))
	statuses := make([]jobxml.Status, len(got))
	zero := 0
	now := time.Now().UTC()
	for i, r := range got {
		ids[i] = strconv.FormatInt(r, 10)
		statuses[i] = jobxml.Status{Run: r, State: jobxml.StateSucceeded, Exit: &zero, Started: now, Finished: now, Output: fmt.Sprintf("run-%d\n", r)}
	}
	if err := c.Call(ctx, "agent.ackJobs", nil, ids); err != nil {
		return again, fmt.Errorf("ghost: agent.ackJobs: %w", err)
	}
	doc, err := jobxml.EncodeStatuses(statuses)
	if err != nil {
		return again, err
	}
	var rep []api.ReportResult
	if err := c.Call(ctx, "agent.reportStatus", &rep, string(doc)); err != nil {
		return again, fmt.Errorf("ghost: agent.reportStatus: %w", err)
	}
	if len(rep) != len(got) || slices.ContainsFunc(rep, func(r api.ReportResult) bool { return !r.Accepted }) {
		return again, fmt.Errorf("ghost: report = %+v", rep)
	}
	return again, nil
}

// startPGCluster starts n `scirectl serve` daemons on the PostgreSQL
// database url (startPGServer, extra its more flags), each with a data
// directory dir/daemon-<i> and, unless config is empty, that as its
// server.yaml. Daemon 0 creates the CA, the server certificate and the
// admin token; the others get copies, so that agents (which pin one CA)
// and the operator trust them all.
func startPGCluster(t *testing.T, url, dir string, n int, config string, extra ...string) []*testServer {
	t.Helper()
	daemons := make([]*testServer, n)
	for i := range daemons {
		dataDir := filepath.Join(dir, fmt.Sprintf("daemon-%d", i))
		if config != "" {
			writeFile(t, filepath.Join(dataDir, "server.yaml"), config)
		}
		if i > 0 {
			copyFile(t, filepath.Join(daemons[0].dataDir, "admin.token"), filepath.Join(dataDir, "admin.token"))
			for _, f := range []string{"ca.crt", "ca.key", "server.crt", "server.key", "push.crt", "push.key"} {
				copyFile(t, filepath.Join(daemons[0].dataDir, "tls", f), filepath.Join(dataDir, "tls", f))
			}
		}
		daemons[i] = startPGServer(t, url, dataDir, freeLoopbackAddr(t), extra...)
	}
	return daemons
}

// startPGServer starts `scirectl serve` on a PostgreSQL database, at a
// fixed loopback address; extra are more flags. Without --lease it has
// the default lease (2m): what a dead daemon sent and nobody acknowledged
// comes back through the takeover (30s after its last heartbeat), not
// through the lease.
func startPGServer(t *testing.T, url, dataDir, addr string, extra ...string) *testServer {
	t.Helper()
	for attempt := 0; ; attempt++ {
		p := start(t, nil, append([]string{"serve", "--db", url, "--data-dir", dataDir, "--listen", addr, "--poll-interval", "1s"}, extra...)...)
		if waitServing(t, p) {
			s := &testServer{proc: p, dataDir: dataDir, addr: addr, url: "https://" + addr + "/RPC2"}
			s.waitHealthy(t)
			return s
		}
		if !strings.Contains(p.log.String(), "address already in use") || attempt >= 50 {
			t.Fatalf("serve --db %s exited early:\n%s", url, p.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func countRuns(t *testing.T, pg *pgxpool.Pool, cond string) int {
	t.Helper()
	var n int
	if err := pg.QueryRow(context.Background(), `SELECT count(*) FROM runs WHERE `+cond).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func pgStateCounts(t *testing.T, pg *pgxpool.Pool) string {
	t.Helper()
	rows, err := pg.Query(context.Background(), `SELECT state, count(*) FROM runs GROUP BY state ORDER BY state`)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return "(" + err.Error() + ")"
		}
		parts = append(parts, fmt.Sprintf("%s=%d", s, n))
	}
	return strings.Join(parts, " ")
}
