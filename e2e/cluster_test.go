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

// The cluster test's load: every job targets one agent, round-robin.
const (
	clusterDaemons    = 3
	clusterAgents     = 24
	clusterJobs       = 20000
	clusterGhostJobs  = 20  // the in-process agent's, sent by the doomed daemon and never acknowledged
	clusterSubmitters = 4   // concurrent submitting connections
	clusterBatch      = 100 // job.submit calls per system.multicall
	clusterSeedEnv    = "SCIRE_CLUSTER_SEED"
	clusterJobsEnv    = "SCIRE_CLUSTER_JOBS" // a smaller or larger load by hand
)

// TestClusterFailoverLosesNothing runs three `scirectl serve` daemons on one
// PostgreSQL database (SPEC §1, §9; issue 6), 24 agents spread over them
// (each agent lists all three with --server, in its own rotated order) and
// 20,000 jobs submitted while the agents work. Once a random share of the
// work is done, one daemon is killed with SIGKILL. Then:
//
//   - its agents move on to their next --server and keep working; what
//     they had acknowledged they run, and their reports reach a live daemon;
//   - the runs it had sent that no agent acknowledged are taken over by a
//     live daemon's rescuer once its heartbeat is 30s old, and dispatched
//     again. To be sure there are some, an in-process "ghost" agent takes
//     runs from the doomed daemon just before the kill and does not
//     acknowledge them; after the takeover it gets them again (attempt 2)
//     from a live daemon, and runs them;
//   - at the end every run succeeded, was executed exactly once, by its own
//     agent (the jobs record their run ids), and is in its own agent's
//     done.log exactly once.
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
		if err != nil || n < clusterAgents {
			t.Fatalf("%s=%q: want a number of jobs ≥ %d", clusterJobsEnv, s, clusterAgents)
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
	t.Logf("cluster seed %d (replay: %s=%d go test -run TestClusterFailoverLosesNothing ./e2e): %d jobs, %d agents; "+
		"kill -9 daemon %d once %.0f%% of the jobs succeeded", seed, clusterSeedEnv, seed, jobs, clusterAgents, victim, 100*killShare)
	defer func() {
		if t.Failed() {
			t.Logf("failed with seed %d", seed)
		}
	}()

	ctx := context.Background()
	url := pgtest.Start(t)
	pg, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()

	// Daemon 0 creates the CA, the server certificate and the admin token;
	// the others get copies, so that agents (which pin one CA) and the
	// operator trust all three.
	dir := t.TempDir()
	daemons := make([]*testServer, clusterDaemons)
	for i := range daemons {
		dataDir := filepath.Join(dir, fmt.Sprintf("daemon-%d", i))
		if i > 0 {
			copyFile(t, filepath.Join(daemons[0].dataDir, "admin.token"), filepath.Join(dataDir, "admin.token"))
			for _, f := range []string{"ca.crt", "ca.key", "server.crt", "server.key", "push.crt", "push.key"} {
				copyFile(t, filepath.Join(daemons[0].dataDir, "tls", f), filepath.Join(dataDir, "tls", f))
			}
		}
		daemons[i] = startPGServer(t, url, dataDir, freeLoopbackAddr(t))
	}
	urls := make([]string, clusterDaemons)
	for i, d := range daemons {
		urls[i] = d.url
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

	// The agents: agent i lists daemon i mod 3 first, then the next ones.
	agents := make([]*crashAgent, clusterAgents)
	firstServer := make([]int, clusterAgents)
	for i := range agents {
		a := &crashAgent{name: fmt.Sprintf("cluster-agent-%02d", i), stateDir: filepath.Join(dir, fmt.Sprintf("agent-%02d", i))}
		if err := os.MkdirAll(a.stateDir, 0o700); err != nil {
			t.Fatal(err)
		}
		args := []string{"client", "poll"}
		for k := range clusterDaemons {
			args = append(args, "--server", urls[(i+k)%clusterDaemons])
		}
		args = append(args, "--ca", caFile, "--state-dir", a.stateDir, "--name", a.name, "--interval", "200ms", "--max-jobs", "50")
		a.proc = start(t, []string{"CRASH_EXEC_LOG=" + a.execLog()}, args...)
		agents[i], firstServer[i] = a, i%clusterDaemons
	}
	// The ghost: an agent identity in this process, talking to the victim.
	ghost := newGhost(t, pool, urls[victim])
	eventually(t, 60*time.Second, "the agents to register", func() bool {
		var cs []api.Client
		if err := op.Call(ctx, "client.list", &cs, map[string]any{"status": "pending"}); err != nil {
			t.Fatal(err)
		}
		return len(cs) == clusterAgents+1
	})
	names := []string{"cluster-ghost"}
	for _, a := range agents {
		names = append(names, a.name)
	}
	if err := op.Call(ctx, "client.accept", nil, names); err != nil {
		t.Fatal(err)
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

	// The load, submitted while the agents work, to the daemons that stay.
	submitStart := time.Now()
	var submitted atomic.Int64
	submitDone := make(chan error, 1)
	go func() { submitDone <- submitCluster(ctx, jobs, agents, operator, survivors, &submitted) }()

	// Kill the victim once its share of the work is done.
	killAt := int(killShare * float64(jobs))
	var killed time.Time
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
		case <-time.After(100 * time.Millisecond):
		}
		if time.Since(submitStart) > 3*time.Minute {
			t.Fatalf("only %d of %d runs succeeded 3 minutes into the load; states %s", n, jobs, pgStateCounts(t, pg))
		}
	}
	killNine(t, daemons[victim].proc)
	killed = time.Now()
	orphans := countRuns(t, pg, fmt.Sprintf(`state = 'sent' AND server_id = %d`, victimID))
	t.Logf("kill -9 daemon %d %v into the load, with %d jobs submitted; runs: %s; %d sent by it and not acknowledged (%d of them the ghost's)",
		victim, killed.Sub(submitStart).Round(time.Millisecond), submitted.Load(), pgStateCounts(t, pg), orphans, clusterGhostJobs)

	// The ghost waits for the takeover, then runs its jobs.
	ghostDone := make(chan error, 1)
	var ghostAgain time.Time
	go func() {
		var err error
		ghostAgain, err = ghost.recover(ctx, survivors, ghostRuns)
		ghostDone <- err
	}()

	if err := <-submitDone; err != nil {
		t.Fatalf("submitting: %v", err)
	}
	t.Logf("%d jobs submitted in %v", jobs, time.Since(submitStart).Round(time.Millisecond))

	total := jobs + clusterGhostJobs
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
	for _, a := range agents {
		a.proc.stop(t)
	}
	t.Logf("all %d runs final %v after the first submission (%.0f runs/s), %v after the kill",
		total, done.Round(time.Millisecond), float64(total)/done.Seconds(), time.Since(killed).Round(time.Millisecond))

	checkClusterRuns(t, pg, jobs, agents, firstServer, victim, victimID, killed)
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
func checkClusterRuns(t *testing.T, pg *pgxpool.Pool, jobs int, agents []*crashAgent, firstServer []int, victim int, victimID int64, killed time.Time) {
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
		id                   int64
		jobName, client      string
		state, reason        string
		attempts, exit       int64
		server, sent         int64
		output               string
		jobRuns, jobsOfName  int64
		exitNull, serverNull bool
	}
	rows, err := pg.Query(context.Background(), `SELECT r.id, j.name, c.name, r.state, r.reason, r.attempts,
			coalesce(r.exit_code, -1), r.exit_code IS NULL, coalesce(r.server_id, 0), r.server_id IS NULL, coalesce(r.sent_at, 0), r.output,
			(SELECT count(*) FROM runs r2 WHERE r2.job_id = r.job_id), (SELECT count(*) FROM jobs j2 WHERE j2.name = j.name)
		FROM runs r JOIN jobs j ON j.id = r.job_id JOIN clients c ON c.id = r.client_id ORDER BY r.id`)
	if err != nil {
		t.Fatal(err)
	}
	var runs []runRow
	for rows.Next() {
		var r runRow
		if err := rows.Scan(&r.id, &r.jobName, &r.client, &r.state, &r.reason, &r.attempts, &r.exit, &r.exitNull,
			&r.server, &r.serverNull, &r.sent, &r.output, &r.jobRuns, &r.jobsOfName); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(runs) != jobs+clusterGhostJobs {
		fail("%d runs in the database, want %d", len(runs), jobs+clusterGhostJobs)
	}

	clientOf := map[int64]string{}
	perDaemon := map[int64]int{}
	again, ghosts := 0, 0
	afterKill := map[string]map[int64]int{} // agent → server → runs sent after the kill
	for _, r := range runs {
		clientOf[r.id] = r.client
		want := "cluster-ghost"
		if n, ok := strings.CutPrefix(r.jobName, "cluster-"); ok {
			i, _ := strconv.Atoi(n)
			want = agents[i%len(agents)].name
		}
		if r.client != want || r.jobRuns != 1 || r.jobsOfName != 1 {
			fail("run %d of job %s: client %s (want %s), %d runs in the job, %d jobs of that name; want 1 and 1",
				r.id, r.jobName, r.client, want, r.jobRuns, r.jobsOfName)
		}
		if r.state != "succeeded" || r.exitNull || r.exit != 0 || r.output != fmt.Sprintf("run-%d\n", r.id) || r.attempts < 1 {
			fail("run %d (%s on %s): %s (reason %q), exit %d, %d attempts, output %q; want succeeded once with exit 0 and run-%d",
				r.id, r.jobName, r.client, r.state, r.reason, r.exit, r.attempts, r.output, r.id)
		}
		if r.serverNull {
			fail("run %d (%s on %s) has no serving daemon", r.id, r.jobName, r.client)
		}
		perDaemon[r.server]++
		if r.attempts > 1 {
			again++
		}
		if r.client == "cluster-ghost" {
			ghosts++
			if r.attempts != 2 || r.server == victimID {
				fail("ghost run %d: %d attempts, served by daemon id %d; want 2 attempts, the second from a live daemon (not %d)",
					r.id, r.attempts, r.server, victimID)
			}
			continue
		}
		if r.sent > killed.UnixNano() {
			if r.server == victimID {
				fail("run %d sent by the killed daemon after its death", r.id)
			}
			if afterKill[r.client] == nil {
				afterKill[r.client] = map[int64]int{}
			}
			afterKill[r.client][r.server]++
		}
	}
	t.Logf("runs per serving daemon id: %v; %d runs handed out more than once; %d ghost runs recovered", perDaemon, again, ghosts)

	// The victim's agents failed over and kept working.
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
		t.Logf("%s (first --server killed): runs sent after the kill, per daemon id: %v; log lines about a failed call: %d",
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
	// Each agent's done.log: exactly its client's runs, each once.
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
		if r.client == "cluster-ghost" {
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

// submitCluster submits the jobs cluster-NNNNN (job n targets agent n mod
// len(agents)) in system.multicall batches from several connections,
// spread over the given daemons.
func submitCluster(ctx context.Context, jobs int, agents []*crashAgent, operator func(...string) *scclient.Client,
	daemons []string, submitted *atomic.Int64) error {
	type batch struct{ first, n int }
	work := make(chan batch)
	errc := make(chan error, clusterSubmitters)
	var wg sync.WaitGroup
	for w := range clusterSubmitters {
		c := operator(daemons[w%len(daemons)])
		wg.Go(func() {
			for b := range work {
				calls := make([]any, b.n)
				for k := range b.n {
					n := b.first + k
					calls[k] = map[string]any{"methodName": "job.submit", "params": []any{map[string]any{
						"name": fmt.Sprintf("cluster-%05d", n), "script": crashScript, "targets": []string{agents[n%len(agents)].name}}}}
				}
				var out []any
				if err := c.Call(ctx, "system.multicall", &out, calls); err != nil {
					errc <- fmt.Errorf("system.multicall of jobs %d..%d: %w", b.first, b.first+b.n-1, err)
					continue
				}
				for k, e := range out {
					if r, ok := e.([]any); !ok || len(r) != 1 {
						errc <- fmt.Errorf("job cluster-%05d: %v", b.first+k, e)
						break
					}
				}
				submitted.Add(int64(len(out)))
			}
		})
	}
	for first := 0; first < jobs; first += clusterBatch {
		work <- batch{first, min(clusterBatch, jobs-first)}
	}
	close(work)
	wg.Wait()
	close(errc)
	return <-errc // the first error, or nil
}

// ghost is an agent in this process: an identity and raw agent calls.
type ghost struct {
	pool *x509.CertPool
	cert tls.Certificate
}

func newGhost(t *testing.T, pool *x509.CertPool, server string) *ghost {
	t.Helper()
	certPEM, keyPEM, err := pki.SelfSigned("cluster-ghost", nil)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	g := &ghost{pool: pool, cert: pair}
	var res struct {
		Status string `xmlrpc:"status"`
	}
	if err := g.client(t, server).Call(context.Background(), "agent.register", &res,
		map[string]any{"hostname": "cluster-ghost", "name": "cluster-ghost", "os": "linux", "arch": "amd64", "version": "test"}); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *ghost) client(t testing.TB, servers ...string) *scclient.Client {
	c, err := g.newClient(servers...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (g *ghost) newClient(servers ...string) (*scclient.Client, error) {
	return scclient.New(scclient.Options{Servers: servers, RootCAs: g.pool, Certificate: &g.cert, Timeout: time.Minute})
}

// getJobs takes the ghost's runs from a daemon, without acknowledging them.
func (g *ghost) getJobs(t *testing.T, server string) []int64 {
	t.Helper()
	var docs []string
	if err := g.client(t, server).Call(context.Background(), "agent.getJobs", &docs, 1000); err != nil {
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
	var rep []reportResult
	if err := c.Call(ctx, "agent.reportStatus", &rep, string(doc)); err != nil {
		return again, fmt.Errorf("ghost: agent.reportStatus: %w", err)
	}
	if len(rep) != len(got) || slices.ContainsFunc(rep, func(r reportResult) bool { return !r.Accepted }) {
		return again, fmt.Errorf("ghost: report = %+v", rep)
	}
	return again, nil
}

type reportResult struct {
	RunID    string `xmlrpc:"run_id"`
	Accepted bool   `xmlrpc:"accepted"`
	Error    string `xmlrpc:"error"`
}

// startPGServer starts `scirectl serve` on a PostgreSQL database, at a
// fixed loopback address, with the default lease (2m): what a dead daemon
// sent and nobody acknowledged comes back through the takeover (30s after
// its last heartbeat), not through the lease.
func startPGServer(t *testing.T, url, dataDir, addr string) *testServer {
	t.Helper()
	for attempt := 0; ; attempt++ {
		p := start(t, nil, "serve", "--db", url, "--data-dir", dataDir, "--listen", addr, "--poll-interval", "1s")
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
