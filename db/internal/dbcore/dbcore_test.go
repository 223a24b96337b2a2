package dbcore

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

func TestDecide(t *testing.T) {
	now := time.Unix(100, 0)
	d := db.Dispatch{Job: db.Job{ExpiresAt: now}}
	if ev, why := Decide(db.Claim{At: now}, d); ev != runstate.Expire || why != ReasonExpiredBeforeDispatch {
		t.Fatalf("expired job: %q %q", ev, why)
	}
	deny := db.Claim{At: now, Decide: func(db.Job, int64) (bool, string) { return false, "no" }}
	if ev, why := Decide(deny, db.Dispatch{}); ev != runstate.Deny || why != "no" {
		t.Fatalf("refused: %q %q", ev, why)
	}
	if ev, _ := Decide(db.Claim{At: now}, db.Dispatch{}); ev != "" {
		t.Fatalf("allowed: %q", ev)
	}
	c := db.Claim{At: now, Lease: time.Minute, ServerID: 3}
	MarkSent(&d, c)
	if d.Run.State != runstate.Sent || d.Run.Attempts != 1 || !d.Run.LeaseUntil.Equal(now.Add(time.Minute)) || d.Run.ServerID != 3 {
		t.Fatalf("sent: %+v", d.Run)
	}
}

func TestTallyAcks(t *testing.T) {
	runs := map[int64]OwnedRun{
		1: {Owner: 7, State: runstate.Sent, Attempts: 1, Moved: true},
		2: {Owner: 7, State: runstate.Running, Attempts: 1},
		3: {Owner: 7, State: runstate.Pending, Attempts: 1},
	}
	res, err := TallyAcks(7, []int64{1, 2, 3}, runs)
	if err != nil || res.Acknowledged != 2 || len(res.Stale) != 1 || res.Stale[0] != 3 {
		t.Fatalf("tally = %+v, %v", res, err)
	}
	if _, err := TallyAcks(8, []int64{1}, runs); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("another client's run: %v", err)
	}
	if _, err := TallyAcks(7, []int64{9}, runs); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown run: %v", err)
	}
	runs[4] = OwnedRun{Owner: 7, State: runstate.Sent, Attempts: 1}
	if _, err := TallyAcks(7, []int64{4}, runs); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("sent run not moved: %v", err)
	}
}

func TestJudge(t *testing.T) {
	for _, c := range []struct {
		cur      runstate.State
		attempts int
		reported runstate.State
		ok       bool
		accepted bool
		note     string
	}{
		{runstate.Received, 1, runstate.Running, true, true, ""},
		{runstate.Running, 1, runstate.Running, false, true, "already running"},
		{runstate.Succeeded, 1, runstate.Failed, false, true, "run is already succeeded; failed report ignored"},
		{runstate.Pending, 0, runstate.Succeeded, false, false, "never sent"},
		{runstate.Pending, 1, runstate.Succeeded, true, true, ""},
		{runstate.Received, 1, runstate.Pending, false, false, "cannot be reported"},
	} {
		_, _, ok, res := Judge(c.cur, c.attempts, db.Report{RunID: 1, State: c.reported})
		if ok != c.ok || res.Accepted != c.accepted || !strings.Contains(res.Note, c.note) {
			t.Errorf("Judge(%s, %d, %s) = %v, %+v", c.cur, c.attempts, c.reported, ok, res)
		}
	}
}

func TestPlan(t *testing.T) {
	cands := []Candidate{
		{Change: db.Change{From: runstate.Sent, Attempts: 1}, MaxAttempts: 3},
		{Change: db.Change{From: runstate.Sent, Attempts: 3}, MaxAttempts: 3},
	}
	if err := Plan(LeaseExpired, cands, ""); err != nil {
		t.Fatal(err)
	}
	if cands[0].To != runstate.Pending || cands[0].Reason != "" || cands[1].To != runstate.Failed || cands[1].Reason != db.ReasonMaxAttempts {
		t.Fatalf("requeue plan: %+v", cands)
	}
	lost := []Candidate{{Change: db.Change{From: runstate.Running}}}
	if err := Plan(Silent, lost, ""); err != nil || lost[0].To != runstate.Failed || lost[0].Reason != db.ReasonLost {
		t.Fatalf("lose plan: %+v, %v", lost, err)
	}
	cancel := []Candidate{{Change: db.Change{From: runstate.Succeeded}}}
	if err := Plan(Cancel, cancel, "by alice"); err == nil {
		t.Fatalf("cancelling a final run planned: %+v", cancel)
	}
}

func TestQueries(t *testing.T) {
	d := &Dialect{Param: "$", StartsWith: func(a *Args, col, prefix string) string { return "starts_with(" + col + ", " + a.Bind(prefix) + ")" }}
	a := NewArgs(d)
	q := OperationsQuery(db.AuditFilter{Actor: "alice", Name: "acl.*", Outcome: "error"}, a, d)
	want := `SELECT ` + OperationCols + ` FROM operations WHERE 1=1 AND actor = $1 AND starts_with(name, $2) AND outcome <> 'ok' ORDER BY id DESC LIMIT $3`
	if q != want || len(a.List) != 3 || a.List[2] != DefaultLimit {
		t.Fatalf("query %q %v, want %q", q, a.List, want)
	}
	if LimitClause(0) != "" || LimitClause(5) != " LIMIT 5" {
		t.Fatal("LimitClause")
	}
}

func TestWriteBackup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "b.db")
	if err := WriteBackup(path, nil, func(abs string) error { return os.WriteFile(abs, []byte("x"), 0o600) }); err != nil {
		t.Fatal(err)
	}
	if err := WriteBackup(path, nil, func(string) error { return nil }); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("over an existing file: %v", err)
	}
	failed := filepath.Join(dir, "failed.db")
	if err := WriteBackup(failed, nil, func(string) error { return errors.New("boom") }); err == nil {
		t.Fatal("a failed write succeeded")
	}
	if _, err := os.Stat(failed); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed backup left its file: %v", err)
	}
	if err := WriteBackup(filepath.Join(dir, "no", "b.db"), nil, nil); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("missing directory: %v", err)
	}
	if err := CheckBackupFile(path); !errors.Is(err, db.ErrInvalid) {
		t.Fatalf("not an SQLite file: %v", err)
	}
}

// StringMap reads what encoding/json reads, whichever way it takes.
func TestStringMap(t *testing.T) {
	for _, s := range stringMapSeeds {
		checkStringMap(t, s)
	}
}

var stringMapSeeds = []string{
	``, `{}`, `{"a":"b"}`, `{"os":"linux","arch":"amd64","hostname":"web1.example.net"}`,
	`{"a":""}`, `{"":""}`, `{"a":"b","a":"c"}`, `{"é":"ü","k":"日本"}`,
	`{"a":"b\"c"}`, `{"a":"\u003cb\u003e"}`, `{"a":"b\\"}`, `{ "a" : "b" }`, `{"a":"b",}`, `{"a":"b"}}`,
	`{"a":"b"`, `{"a":1}`, `{"a":"b","c":2}`, `{"a":null}`, `["a","b"]`, `{"a":"b" }`, `{"a":"line` + "\n" + `"}`,
	`{"a":"` + "\xff" + `"}`, `{"a""b"}`, `{"a":"b""c":"d"}`, `{a:"b"}`, `{"a":"b"} `, `{`, `}`, `"{}"`,
}

func checkStringMap(t *testing.T, s string) {
	t.Helper()
	want := map[string]string{}
	if s != "" && s != "{}" {
		_ = json.Unmarshal([]byte(s), &want)
	}
	if got := StringMap(s); !maps.Equal(got, want) || got == nil {
		t.Fatalf("StringMap(%q) = %#v, want %#v", s, got, want)
	}
}

func FuzzStringMap(f *testing.F) {
	for _, s := range stringMapSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkStringMap(t, s) })
}

// The traits of clients keep equal strings once and equal label sets as
// one map, and read as StringMap reads them, escapes and all.
func TestTraitReader(t *testing.T) {
	in := newTraitReader()
	texts := []string{`{"env":"prod","tier":"web"}`, `{"env":"prod","tier":"web"}`, `{"env":"prod"}`,
		`{"env":"pr\"od"}`, `{"env":"prod\u003c"}`, `{}`, `{"env":"prod","tier":"web"}`}
	var got []map[string]string
	for _, s := range texts {
		m := in.labels(strings.Clone(s))
		if !maps.Equal(m, StringMap(s)) {
			t.Fatalf("labels(%s) = %v, want %v", s, m, StringMap(s))
		}
		got = append(got, m)
	}
	one := func(a, b map[string]string) bool { return fmt.Sprintf("%p", a) == fmt.Sprintf("%p", b) }
	if !one(got[0], got[1]) || !one(got[0], got[6]) || one(got[0], got[2]) || one(got[2], got[3]) {
		t.Fatal("equal label texts are not one map, or different ones are")
	}
	a, b := in.stringMap(`{"os":"linux","host":"a"}`), in.stringMap(`{"host":"b","os":"linux"}`)
	if unsafe.StringData(a["os"]) != unsafe.StringData(b["os"]) || a["host"] != "a" || b["host"] != "b" {
		t.Fatalf("facts %v and %v do not share their strings", a, b)
	}
	if c := in.stringMap(`{"os":"li\u006eux"}`); c["os"] != "linux" || unsafe.StringData(c["os"]) != unsafe.StringData(a["os"]) {
		t.Fatalf("escaped facts: %v", c)
	}
}
