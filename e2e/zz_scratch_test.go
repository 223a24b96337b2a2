package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/scirectl/scirectl/api"
	scclient "github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/internal/pgtest"
	"github.com/scirectl/scirectl/pki"
)

func TestScratchSubmitRate(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	if os.Getenv("SCRATCH_ASYNC") != "" {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "ALTER DATABASE "+c.Config().Database+" SET synchronous_commit = off"); err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
	}
	dir := t.TempDir()
	d := startPGServer(t, url, filepath.Join(dir, "d0"), freeLoopbackAddr(t))
	if c := os.Getenv("SCRATCH_CONFIG"); c != "" {
		d.proc.stop(t)
		os.WriteFile(filepath.Join(dir, "d0", "server.yaml"), []byte(c), 0o644)
		d = startPGServer(t, url, filepath.Join(dir, "d0"), freeLoopbackAddr(t))
	}
	pool, _ := pki.CertPool(d.caFile())
	op, _ := scclient.New(scclient.Options{Servers: []string{d.url}, RootCAs: pool, Token: d.token(t)})
	agents := make([]*crashAgent, 24)
	for i := range agents {
		a := &crashAgent{name: fmt.Sprintf("cluster-agent-%02d", i), stateDir: filepath.Join(dir, fmt.Sprintf("agent-%02d", i))}
		os.MkdirAll(a.stateDir, 0o700)
		a.proc = start(t, nil, "client", "poll", "--server", d.url, "--ca", d.caFile(), "--state-dir", a.stateDir, "--name", a.name, "--once")
		agents[i] = a
	}
	eventually(t, 60*time.Second, "reg", func() bool {
		var cs []api.Client
		op.Call(ctx, "client.list", &cs, map[string]any{"status": "pending"})
		return len(cs) == 24
	})
	var names []string
	for _, a := range agents {
		names = append(names, a.name)
	}
	if err := op.Call(ctx, "client.accept", nil, names); err != nil {
		t.Fatal(err)
	}
	st := time.Now()
	var n atomic.Int64
	operator := func(s ...string) *scclient.Client { return op }
	if err := submitCluster(ctx, 2000, agents, operator, []string{d.url}, &n); err != nil {
		t.Fatal(err)
	}
	t.Logf("2000 submits in %v: %.0f/s", time.Since(st), 2000/time.Since(st).Seconds())
	for _, a := range agents {
		<-a.proc.done
	}
	st = time.Now()
	for _, a := range agents {
		a.proc = start(t, []string{"CRASH_EXEC_LOG=" + a.execLog()}, "client", "poll", "--server", d.url, "--ca", d.caFile(), "--state-dir", a.stateDir, "--name", a.name, "--interval", "200ms", "--max-jobs", "50")
	}
	pg, _ := pgxpool.New(ctx, url)
	for countRuns(t, pg, "state = 'succeeded'") < 2000 {
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("2000 runs drained in %v: %.0f/s", time.Since(st), 2000/time.Since(st).Seconds())
}
