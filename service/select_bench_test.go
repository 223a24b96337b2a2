package service_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/scirectl/scirectl/acl"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/service"
)

// The fleet of BenchmarkSelect100k: fleetSize active clients, each with
// eight facts and three labels, and a few pending ones.
const (
	fleetSize    = 100000
	fleetPending = 1000
	// fleetSelector matches one active client in a hundred: env=prod is
	// every other client, rack r07 one in fifty of those.
	fleetSelector = "env=prod,rack=r07,fact.arch=amd64"
	fleetMatches  = fleetSize / 100
)

// fleetClient is the i-th client's name, labels and facts.
func fleetClient(i int) (name string, labels, facts map[string]string) {
	name = fmt.Sprintf("node%06d", i)
	envs := []string{"prod", "staging"}
	tiers := []string{"web", "db", "cache", "batch", "edge"}
	kernels := []string{"6.1.0-13-amd64", "6.1.0-18-amd64", "6.12.9-amd64"}
	env := envs[i%2]
	if i >= fleetSize {
		env = "qa" // the pending ones: no selector here matches them
	}
	labels = map[string]string{
		"env":  env,
		"rack": fmt.Sprintf("r%02d", (i/2)%50),
		"tier": tiers[(i/100)%len(tiers)],
	}
	arch := "amd64"
	if i%10 == 9 {
		arch = "arm64"
	}
	facts = map[string]string{
		"hostname": name + ".example.net", "os": "linux", "arch": arch, "kernel": kernels[i%len(kernels)],
		"os_id": "debian", "os_version": "12", "cpus": strconv.Itoa(4 << (i % 3)), "agent_version": "1.4.0",
	}
	return name, labels, facts
}

// fleetJSON is a map as the store keeps it: a JSON object, keys sorted.
func fleetJSON(m map[string]string) string {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// newFleet makes an SQLite store file holding the fleet (rows written in
// one transaction, as registering and accepting 100,000 agents one by one
// would take long), with a rule letting alice run anything and a dynamic
// group of the clients fleetSelector matches, and opens the service on it.
func newFleet(b *testing.B) *service.Service {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "fleet.db")
	st, err := db.Open(ctx, "sqlite://"+path)
	if err != nil {
		b.Fatal(err)
	}
	st.Close()
	conn, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO clients (fingerprint, name, status, hostname, os, arch, version, mode,
		registered_at, last_seen, facts, facts_hash, labels) VALUES (?, ?, ?, ?, 'linux', ?, '1.4.0', 'poll', ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := range fleetSize + fleetPending {
		name, labels, facts := fleetClient(i)
		status := db.ClientActive
		if i >= fleetSize {
			status = db.ClientPending
		}
		if _, err := ins.ExecContext(ctx, fmt.Sprintf("%064x", i), name, status, facts["hostname"], facts["arch"],
			at, at+int64(i), fleetJSON(facts), fmt.Sprintf("%064x", i*7), fleetJSON(labels)); err != nil {
			b.Fatal(err)
		}
	}
	ins.Close()
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	conn.Close()

	st, err = db.Open(ctx, "sqlite://"+path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	s := &service.Service{Store: st, Policy: &acl.Cache{Load: st.Policy}}
	if _, err := st.EnsureUser(ctx, "alice"); err != nil {
		b.Fatal(err)
	}
	if _, err := st.AddACLRule(ctx, db.ACLRule{SubjectKind: db.KindUser, Subject: "alice", Permission: "run",
		TargetKind: db.KindAny, Allow: true, Active: true, CreatedBy: "admin"}); err != nil {
		b.Fatal(err)
	}
	if _, err := s.CreateDynamicGroup(ctx, "prod-r07", "", fleetSelector); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkSelect100k is choosing machines among 100,000 active clients
// (each with eight facts and three labels) on a real SQLite file, as the
// daemon does: job.submit's preparation with a selector, a name glob or a
// dynamic group (each matching 1,000 clients) or one client's name,
// client.list with a selector, a dynamic group shown; then a selection
// right after a client changed, and a daemon's first selection. One op
// is one selection; the aim is under 100 ms. Each benchmark makes one
// selection before it measures: the service may keep what it read.
func BenchmarkSelect100k(b *testing.B) {
	ctx := context.Background()
	s := newFleet(b)
	alice := db.User{Name: "alice"}
	want := func(b *testing.B, n int) {
		if n != fleetMatches {
			b.Fatalf("%d clients chosen, want %d", n, fleetMatches)
		}
	}
	prepare := func(s *service.Service, req service.JobRequest) func(b *testing.B) {
		return func(b *testing.B) {
			req.Script = "uptime"
			sub, err := s.PrepareJob(ctx, alice, req)
			if err != nil {
				b.Fatal(err)
			}
			want(b, len(sub.Clients))
		}
	}
	loop := func(name string, fn func(b *testing.B)) {
		b.Run(name, func(b *testing.B) {
			fn(b)
			for b.Loop() {
				fn(b)
			}
		})
	}
	loop("PrepareJob/selector", prepare(s, service.JobRequest{Selectors: []string{fleetSelector}}))
	loop("PrepareJob/glob", prepare(s, service.JobRequest{Targets: []string{"node012???"}})) // node012000 … node012999
	loop("PrepareJob/group", prepare(s, service.JobRequest{Groups: []string{"prod-r07"}}))
	loop("PrepareJob/name", func(b *testing.B) {
		sub, err := s.PrepareJob(ctx, alice, service.JobRequest{Script: "uptime", Targets: []string{"node012345"}})
		if err != nil || len(sub.Clients) != 1 {
			b.Fatalf("%v, %v", sub.Clients, err)
		}
	})
	loop("ListClients/selector", func(b *testing.B) {
		cs, err := s.ListClients(ctx, db.ClientFilter{}, []string{fleetSelector})
		if err != nil {
			b.Fatal(err)
		}
		want(b, len(cs))
	})
	loop("Group/dynamic", func(b *testing.B) {
		g, err := s.Group(ctx, db.KindClientGroup, "prod-r07")
		if err != nil {
			b.Fatal(err)
		}
		want(b, len(g.ClientIDs))
	})
	// A daemon's first selection, by a new service each time; heap-MB is
	// what the last one holds on to afterwards.
	b.Run("PrepareJob/selector-first", func(b *testing.B) {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		var fresh *service.Service
		for b.Loop() {
			fresh = &service.Service{Store: s.Store, Policy: s.Policy}
			prepare(fresh, service.JobRequest{Selectors: []string{fleetSelector}})(b)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(int64(ms.HeapAlloc)-int64(before))/(1<<20), "heap-MB")
		runtime.KeepAlive(fresh)
	})
	// A client's labels change before each selection: what a selection
	// costs when the clients changed since the last one.
	b.Run("PrepareJob/selector-after-change", func(b *testing.B) {
		ids := []int64{fleetSize / 2}
		n := 0
		for b.Loop() {
			n++
			b.StopTimer()
			if _, err := s.Store.SetClientLabels(ctx, ids, map[string]string{"bench": strconv.Itoa(n)}, nil); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			sub, err := s.PrepareJob(ctx, alice, service.JobRequest{Script: "uptime", Selectors: []string{fleetSelector}})
			if err != nil {
				b.Fatal(err)
			}
			want(b, len(sub.Clients))
		}
	})
}
