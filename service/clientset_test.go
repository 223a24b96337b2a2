package service_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scirectl/scirectl/acl"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/service"
)

// loadCounter is a store that counts the loads of the clients' traits:
// how often the service read every client rather than reuse what it had.
type loadCounter struct {
	db.Store
	loads atomic.Int64
}

func (s *loadCounter) ListClientTraits(ctx context.Context) (int64, []db.ClientTraits, error) {
	s.loads.Add(1)
	return s.Store.ListClientTraits(ctx)
}

// openAt opens the store of an SQLite file, as a daemon does.
func openAt(t *testing.T, path string) db.Store {
	t.Helper()
	st, err := db.Open(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// countingService is the domain layer over the SQLite file at path, its
// loads counted.
func countingService(t *testing.T, path string) (*service.Service, *loadCounter) {
	t.Helper()
	st := &loadCounter{Store: openAt(t, path)}
	return &service.Service{Store: st, Policy: &acl.Cache{Load: st.Policy}}, st
}

// names lists the names of clients, in order.
func names(cs []db.Client) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}

// The service reads every client once, and again only after a change to
// what a choice reads — a client added, accepted, revoked or deleted, a
// label, a fact, a name — whoever made it: another daemon on the same
// database, or SQL of its own. A client heard from, a registration that
// says nothing new, jobs and groups change nothing.
func TestChoicesFollowEveryChange(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "scire.db")
	s, st := countingService(t, path)
	other, _ := countingService(t, path) // another daemon on the same database
	allow(t, s, "alice", "run", "*")

	web1 := register(t, other, fp(0), "web1", db.ClientActive)
	web2 := register(t, other, fp(1), "web2", db.ClientActive)
	register(t, other, fp(2), "db1", db.ClientPending)
	if _, err := s.CreateDynamicGroup(ctx, "prod", "", "env=prod"); err != nil {
		t.Fatal(err)
	}

	// choices lists what each kind of choice picks now: client.list with
	// a selector, job.submit with a selector, a glob and a dynamic group,
	// and group.get of the dynamic group.
	type choices struct{ list, selector, glob, group, shown []string }
	choose := func() choices {
		t.Helper()
		var c choices
		cs, err := s.ListClients(ctx, db.ClientFilter{}, []string{"env=prod", "fact.role=db"})
		if err != nil {
			t.Fatal(err)
		}
		c.list = names(cs)
		job := func(req service.JobRequest) []string {
			req.Script = "true"
			sub, err := s.PrepareJob(ctx, user("alice"), req)
			if err != nil {
				return []string{err.Error()}
			}
			return names(sub.Clients)
		}
		c.selector = job(service.JobRequest{Selectors: []string{"env=prod"}})
		c.glob = job(service.JobRequest{Targets: []string{"web*"}})
		c.group = job(service.JobRequest{Groups: []string{"prod"}})
		g, err := s.Group(ctx, db.KindClientGroup, "prod")
		if err != nil {
			t.Fatal(err)
		}
		c.shown = g.MemberNames
		return c
	}
	none := "selectors env=prod match no active client"
	noGroup := "groups prod have no active client"
	want := func(what string, loads int64, w choices) {
		t.Helper()
		got := choose()
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Fatalf("%s: chose %+v,\nwant %+v", what, got, w)
		}
		if n := st.loads.Load(); n != loads {
			t.Fatalf("%s: the clients were read whole %d times, want %d", what, n, loads)
		}
	}
	want("no labels", 1, choices{list: []string{}, selector: []string{none}, glob: []string{"web1", "web2"},
		group: []string{noGroup}, shown: nil})
	want("nothing changed", 1, choices{list: []string{}, selector: []string{none}, glob: []string{"web1", "web2"},
		group: []string{noGroup}, shown: nil})

	if _, err := other.LabelClients(ctx, []string{"web1", "db1"}, map[string]string{"env": "prod"}, nil); err != nil {
		t.Fatal(err)
	}
	want("labels set by another daemon", 2, choices{list: []string{"web1", "db1"}, selector: []string{"web1"},
		glob: []string{"web1", "web2"}, group: []string{"web1"}, shown: []string{"web1"}})

	if err := other.Store.TouchClients(ctx, map[int64]time.Time{web1.ID: time.Now(), web2.ID: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Store.RegisterClient(ctx, db.ClientRegistration{Fingerprint: fp(1), Name: "web2", Hostname: "web2",
		Mode: db.ModePoll, At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Store.SubmitJob(ctx, db.NewJob{Name: "j", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "alice",
		ClientIDs: []int64{web1.ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.CreateGroup(ctx, db.KindClientGroup, "static", ""); err != nil {
		t.Fatal(err)
	}
	want("clients heard from, registered again, a job, a group", 2, choices{list: []string{"web1", "db1"},
		selector: []string{"web1"}, glob: []string{"web1", "web2"}, group: []string{"web1"}, shown: []string{"web1"}})

	if _, err := other.SetClientStatus(ctx, []string{"db1"}, db.ClientActive); err != nil {
		t.Fatal(err)
	}
	want("a client accepted", 3, choices{list: []string{"web1", "db1"}, selector: []string{"web1", "db1"},
		glob: []string{"web1", "web2"}, group: []string{"web1", "db1"}, shown: []string{"web1", "db1"}})

	if _, err := other.Store.RegisterClient(ctx, db.ClientRegistration{Fingerprint: fp(1), Name: "web2", Hostname: "web2",
		Mode: db.ModePoll, At: time.Now().UTC(), Facts: map[string]string{"role": "db"}, FactsHash: "h"}); err != nil {
		t.Fatal(err)
	}
	want("facts sent", 4, choices{list: []string{"web1", "web2", "db1"}, selector: []string{"web1", "db1"},
		glob: []string{"web1", "web2"}, group: []string{"web1", "db1"}, shown: []string{"web1", "db1"}})

	web3 := register(t, other, fp(3), "web3", db.ClientPending)
	want("a client registered", 5, choices{list: []string{"web1", "web2", "db1"}, selector: []string{"web1", "db1"},
		glob: []string{"web1", "web2"}, group: []string{"web1", "db1"}, shown: []string{"web1", "db1"}})
	if _, err := other.Store.RegisterClient(ctx, db.ClientRegistration{Fingerprint: fp(3), Name: "web3-new", Hostname: "web3",
		Mode: db.ModePoll, At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Store.SetClientLabels(ctx, []int64{web3.ID}, map[string]string{"env": "prod"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := other.SetClientStatus(ctx, []string{"web3-new"}, db.ClientActive); err != nil {
		t.Fatal(err)
	}
	want("a pending client renamed, labelled and accepted", 6, choices{list: []string{"web1", "web2", "db1", "web3-new"},
		selector: []string{"web1", "db1", "web3-new"}, glob: []string{"web1", "web2", "web3-new"},
		group: []string{"web1", "db1", "web3-new"}, shown: []string{"web1", "db1", "web3-new"}})

	if _, err := other.SetClientStatus(ctx, []string{"web1"}, db.ClientRevoked); err != nil {
		t.Fatal(err)
	}
	want("a client revoked", 7, choices{list: []string{"web1", "web2", "db1", "web3-new"},
		selector: []string{"db1", "web3-new"}, glob: []string{"web2", "web3-new"},
		group: []string{"db1", "web3-new"}, shown: []string{"db1", "web3-new"}})

	if _, err := other.DeleteClients(ctx, []string{"web1"}); err != nil {
		t.Fatal(err)
	}
	want("a client deleted", 8, choices{list: []string{"web2", "db1", "web3-new"},
		selector: []string{"db1", "web3-new"}, glob: []string{"web2", "web3-new"},
		group: []string{"db1", "web3-new"}, shown: []string{"db1", "web3-new"}})

	// SQL of its own, as an administrator might write by hand.
	conn, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Exec(`UPDATE clients SET labels = '{"env":"prod"}' WHERE name = 'web2'`); err != nil {
		t.Fatal(err)
	}
	want("labels written by SQL", 9, choices{list: []string{"web2", "db1", "web3-new"},
		selector: []string{"web2", "db1", "web3-new"}, glob: []string{"web2", "web3-new"},
		group: []string{"web2", "db1", "web3-new"}, shown: []string{"web2", "db1", "web3-new"}})
	if _, err := conn.Exec(`UPDATE clients SET last_seen = last_seen + 1, hostname = 'elsewhere'`); err != nil {
		t.Fatal(err)
	}
	want("last_seen and hostname written by SQL", 9, choices{list: []string{"web2", "db1", "web3-new"},
		selector: []string{"web2", "db1", "web3-new"}, glob: []string{"web2", "web3-new"},
		group: []string{"web2", "db1", "web3-new"}, shown: []string{"web2", "db1", "web3-new"}})
}

// What a choice hands out is read again as it is: the last seen time, the
// host name, which the clients version does not follow.
func TestChoicesHandOutCurrentRows(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	c := register(t, s, fp(0), "web1", db.ClientActive)
	if _, err := s.LabelClients(ctx, []string{"web1"}, map[string]string{"env": "prod"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListClients(ctx, db.ClientFilter{}, []string{"env=prod"}); err != nil {
		t.Fatal(err)
	}
	seen := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.Store.TouchClients(ctx, map[int64]time.Time{c.ID: seen}); err != nil {
		t.Fatal(err)
	}
	cs, err := s.ListClients(ctx, db.ClientFilter{Status: db.ClientActive}, []string{"env=prod"})
	if err != nil || len(cs) != 1 || !cs[0].LastSeen.Equal(seen) || cs[0].Labels["env"] != "prod" {
		t.Fatalf("ListClients = %+v, %v; want web1 last seen %s", cs, err, seen)
	}
	if cs, err := s.ListClients(ctx, db.ClientFilter{Status: db.ClientPending}, []string{"env=prod"}); err != nil || len(cs) != 0 {
		t.Fatalf("pending clients = %+v, %v", cs, err)
	}
}

// A reset and a restore move the clients version on: the service reads
// the clients again.
func TestChoicesAfterResetAndRestore(t *testing.T) {
	ctx := context.Background()
	s, st := countingService(t, filepath.Join(t.TempDir(), "scire.db"))
	register(t, s, fp(0), "web1", db.ClientActive)
	backup := filepath.Join(t.TempDir(), "b.db")
	if err := s.Store.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	register(t, s, fp(1), "web2", db.ClientActive)
	var loads int64
	list := func() []string {
		t.Helper()
		cs, err := s.ListClients(ctx, db.ClientFilter{}, []string{"!env"})
		if err != nil {
			t.Fatal(err)
		}
		if loads++; st.loads.Load() != loads {
			t.Fatalf("the clients were read whole %d times, want %d", st.loads.Load(), loads)
		}
		return names(cs)
	}
	if got := list(); !slices.Equal(got, []string{"web1", "web2"}) {
		t.Fatalf("before: %v", got)
	}
	if err := s.Store.Restore(ctx, backup); err != nil {
		t.Fatal(err)
	}
	if got := list(); !slices.Equal(got, []string{"web1"}) {
		t.Fatalf("after the restore: %v", got)
	}
	if err := s.Store.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("after the reset: %v", got)
	}
	if err := s.Store.Restore(ctx, backup); err != nil {
		t.Fatal(err)
	}
	if got := list(); !slices.Equal(got, []string{"web1"}) {
		t.Fatalf("after a second restore: %v", got)
	}
}

// Choices run at once with changes, on one service: each hands out only
// clients that match as they are read, none fails, and once the changes
// stop a choice sees the last of them. (Run it with -race.)
func TestChoicesConcurrentWithChanges(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "scire.db")
	s, st := countingService(t, path)
	writer, _ := countingService(t, path)
	allow(t, s, "alice", "run", "*")
	const n = 20
	for i := range n {
		register(t, writer, fp(byte(i)), fmt.Sprint("node", i), db.ClientActive)
	}
	if _, err := writer.CreateDynamicGroup(ctx, "blue", "", "colour=blue"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	blue := func(cs []db.Client) error {
		for _, c := range cs {
			if c.Labels["colour"] != "blue" || c.Status != db.ClientActive {
				return fmt.Errorf("chose %s with labels %v, status %s", c.Name, c.Labels, c.Status)
			}
		}
		return nil
	}
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				cs, err := s.ListClients(ctx, db.ClientFilter{Status: db.ClientActive}, []string{"colour=blue"})
				if err == nil {
					err = blue(cs)
				}
				if err == nil {
					cs, err = s.GroupClients(ctx, []string{"blue"})
					if err == nil {
						err = blue(cs)
					}
				}
				if err == nil {
					var sub service.Submission
					sub, err = s.PrepareJob(ctx, user("alice"), service.JobRequest{Script: "true", Selectors: []string{"colour=blue"}})
					if errors.Is(err, service.ErrConflict) { // none blue just now
						err = nil
					} else if err == nil {
						err = blue(sub.Clients)
					}
				}
				if err != nil {
					fail(err)
					return
				}
			}
		})
	}
	colour := []string{"blue", "red"}
	for round := range 30 {
		i := round % n
		if _, err := writer.LabelClients(ctx, []string{fmt.Sprint("node", i)}, map[string]string{"colour": colour[round/n%2]}, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The last change: nodes 0–9 red, 10–19 blue.
	cs, err := s.ListClients(ctx, db.ClientFilter{}, []string{"colour=blue"})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 10; i < n; i++ {
		want = append(want, fmt.Sprint("node", i))
	}
	if !slices.Equal(names(cs), want) {
		t.Fatalf("after the changes: %v, want %v", names(cs), want)
	}
	if loads := st.loads.Load(); loads < 2 || loads > 31 {
		t.Fatalf("%d loads for 30 changes", loads)
	}
}
