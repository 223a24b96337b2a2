package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
)

// metricCount is a series' value (a histogram's count), 0 when the
// series does not exist yet.
func (s scrape) metricCount(name string, labels map[string]string) float64 {
	f, ok := s.fams[name]
	if !ok {
		return 0
	}
	if m := series(f, labels); m != nil {
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	return 0
}

// submitCall is a system.multicall entry calling job.submit with job.
func submitCall(job map[string]any) map[string]any {
	return map[string]any{"methodName": "job.submit", "params": []any{job}}
}

// multicall sends calls in one system.multicall as c and returns the
// entries: [result] or a fault struct each.
func multicall(t *testing.T, c *client.Client, calls ...any) []any {
	t.Helper()
	var res []any
	if err := c.Call(context.Background(), "system.multicall", &res, calls); err != nil {
		t.Fatalf("system.multicall: %v", err)
	}
	if len(res) != len(calls) {
		t.Fatalf("system.multicall: %d calls answered by %d entries: %#v", len(calls), len(res), res)
	}
	return res
}

// entryID is the job id of a successful job.submit entry.
func entryID(t *testing.T, i int, e any) string {
	t.Helper()
	l, ok := e.([]any)
	if !ok || len(l) != 1 {
		t.Fatalf("entry %d = %#v, want [{id, runs}]", i+1, e)
	}
	m, ok := l[0].(map[string]any)
	id, _ := m["id"].(string)
	if !ok || id == "" || m["runs"] != int64(1) {
		t.Fatalf("entry %d = %#v, want {id, runs: 1}", i+1, e)
	}
	return id
}

func entryFault(t *testing.T, i int, e any, code int64, text string) {
	t.Helper()
	m, ok := e.(map[string]any)
	msg, _ := m["faultString"].(string)
	if !ok || m["faultCode"] != code || !strings.Contains(msg, text) {
		t.Fatalf("entry %d = %#v, want fault %d containing %q", i+1, e, code, text)
	}
}

// TestSubmitBatchInOneMulticall: consecutive job.submit calls of one
// multicall are checked one by one and stored together: the valid ones get
// ids, an invalid and a forbidden one their faults; one gate admission and
// one SubmitJobs for the lot; one audit record per call, none twice.
func TestSubmitBatchInOneMulticall(t *testing.T) {
	h := newHarness(t)
	admin := h.operator(t)
	zelda, _ := h.addUser(t, admin, "zelda")
	addRule(t, admin, "user:zelda", "run", "*", "allow")
	h.activeClient(t, admin, "web1")

	before := h.scrape(t)
	got := multicall(t, zelda,
		submitCall(map[string]any{"script": "echo one", "targets": []string{"web1"}}),
		submitCall(map[string]any{"script": "echo two", "targets": []string{"web1"}, "name": "second"}),
		submitCall(map[string]any{"script": "", "targets": []string{"web1"}}),
		submitCall(map[string]any{"script": "echo four", "targets": []string{"web1"}, "permission": "reboot"}),
		submitCall(map[string]any{"script": "echo five", "targets": []string{"web1"}}),
	)
	after := h.scrape(t)

	ids := []string{entryID(t, 0, got[0]), entryID(t, 1, got[1]), entryID(t, 4, got[4])}
	entryFault(t, 2, got[2], 400, "job.submit: script: required and must not be empty")
	entryFault(t, 3, got[3], 403, `zelda may not "reboot"`)
	var last int64
	for _, id := range ids {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n <= last {
			t.Fatalf("job ids %q: want increasing in the order of the calls", ids)
		}
		last = n
	}
	for i, want := range []struct{ name, script string }{{"echo one", "echo one"}, {"second", "echo two"}, {"echo five", "echo five"}} {
		var j api.Job
		mustCall(t, admin, "job.get", &j, ids[i])
		if j.Name != want.name || j.Script != want.script || j.SubmittedBy != "zelda" || j.Status != "pending" || len(j.Runs) != 1 {
			t.Errorf("job %s = %+v, want %q by zelda, pending on web1", ids[i], j, want.script)
		}
	}
	var jobs []api.Job
	mustCall(t, admin, "job.list", &jobs)
	if len(jobs) != 3 {
		t.Fatalf("job.list: %d jobs, want 3: %+v", len(jobs), jobs)
	}

	// The audit trail: an ok record per stored job, an error record for
	// the invalid call, the denial for the forbidden one; nothing twice.
	var trail []api.AuditEntry
	mustCall(t, admin, "audit.list", &trail, map[string]any{"operation": "job.submit"})
	var outcomes []string
	for _, e := range trail {
		if e.Actor != "zelda" || e.ServerID == "" || e.ServerID == "0" {
			t.Errorf("audit entry %+v: want actor zelda and this server's id", e)
		}
		outcomes = append(outcomes, e.Outcome+" "+e.Target)
	}
	sort.Strings(outcomes)
	// Scripts appear as their length and SHA-256, never as text.
	sha := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	want := []string{ // sorted; describeParams leaves the empty script out
		"denied web1",
		"error targets=web1",
		"ok script=8 bytes sha256:" + sha("echo two") + " name=second targets=web1",
		"ok script=9 bytes sha256:" + sha("echo five") + " targets=web1",
		"ok script=8 bytes sha256:" + sha("echo one") + " targets=web1",
	}
	sort.Strings(want)
	if !reflect.DeepEqual(outcomes, want) {
		t.Errorf("audit trail of job.submit:\n%q\nwant\n%q\n(%+v)", outcomes, want, trail)
	}
	for _, e := range trail {
		if e.Outcome == "error" && !strings.Contains(e.Detail, "script: required") {
			t.Errorf("error record %+v does not say why", e)
		}
	}

	// One store call, one gate admission, for the five calls; each call
	// counted with its own outcome.
	delta := func(name string, labels map[string]string) float64 {
		return after.metricCount(name, labels) - before.metricCount(name, labels)
	}
	for _, m := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"scire_db_query_duration_seconds", lbl{"method": "SubmitJobs"}, 1},
		{"scire_gate_wait_seconds", lbl{"operation": "job.submit", "class": "modifier"}, 1},
		{"scire_gate_hold_seconds", lbl{"operation": "job.submit", "class": "modifier"}, 1},
		{"scire_rpc_requests_total", lbl{"method": "job.submit", "code": "0"}, 3},
		{"scire_rpc_requests_total", lbl{"method": "job.submit", "code": "400"}, 1},
		{"scire_rpc_requests_total", lbl{"method": "job.submit", "code": "403"}, 1},
		{"scire_rpc_duration_seconds", lbl{"method": "job.submit"}, 5},
	} {
		if got := delta(m.name, m.labels); got != m.want {
			t.Errorf("%s%v grew by %v in the multicall, want %v", m.name, m.labels, got, m.want)
		}
	}

	// Two runs of job.submit split by another method: two batches.
	before = h.scrape(t)
	got = multicall(t, zelda,
		submitCall(map[string]any{"script": "echo six", "targets": []string{"web1"}}),
		submitCall(map[string]any{"script": "echo seven", "targets": []string{"web1"}}),
		map[string]any{"methodName": "job.list", "params": []any{}},
		submitCall(map[string]any{"script": "echo eight", "targets": []string{"web1"}}),
		submitCall(map[string]any{"script": "echo nine", "targets": []string{"web1"}}),
	)
	after = h.scrape(t)
	for _, i := range []int{0, 1, 3, 4} {
		entryID(t, i, got[i])
	}
	if got := delta("scire_db_query_duration_seconds", lbl{"method": "SubmitJobs"}); got != 2 {
		t.Errorf("SubmitJobs called %v times for two runs, want 2", got)
	}
	if got := delta("scire_gate_wait_seconds", lbl{"operation": "job.submit", "class": "modifier"}); got != 2 {
		t.Errorf("job.submit admitted %v times for two runs, want 2", got)
	}
	mustCall(t, admin, "audit.list", &trail, map[string]any{"operation": "job.submit", "outcome": "ok"})
	if len(trail) != 7 {
		t.Errorf("%d ok job.submit records, want 7: %+v", len(trail), trail)
	}
}

// TestSubmitBatchAllInvalid: a batch none of whose calls is valid stores
// nothing and calls the store for nothing.
func TestSubmitBatchAllInvalid(t *testing.T) {
	h := newHarness(t)
	admin := h.operator(t)
	h.activeClient(t, admin, "web1")
	before := h.scrape(t)
	got := multicall(t, admin,
		submitCall(map[string]any{"script": "", "targets": []string{"web1"}}),
		submitCall(map[string]any{"script": "true", "targets": []string{"nobody-by-that-name"}}),
		submitCall(map[string]any{"script": "true"}),
	)
	after := h.scrape(t)
	entryFault(t, 0, got[0], 400, "script")
	entryFault(t, 1, got[1], 404, "nobody-by-that-name")
	entryFault(t, 2, got[2], 400, "targets")
	lb := lbl{"method": "SubmitJobs"}
	if d := after.metricCount("scire_db_query_duration_seconds", lb) - before.metricCount("scire_db_query_duration_seconds", lb); d != 0 {
		t.Errorf("SubmitJobs called %v times for no valid job", d)
	}
	var jobs []api.Job
	mustCall(t, admin, "job.list", &jobs)
	var trail []api.AuditEntry
	mustCall(t, admin, "audit.list", &trail, map[string]any{"operation": "job.submit"})
	if len(jobs) != 0 || len(trail) != 3 {
		t.Fatalf("jobs %+v, audit %+v: want none, and three error records", jobs, trail)
	}
	for _, e := range trail {
		if e.Outcome != "error" {
			t.Errorf("audit entry %+v, want an error", e)
		}
	}
}

// TestSubmitKeepsClientCache: job.submit, alone or batched, changes no
// client and leaves the agents' certificate cache as it was (an agent's
// next call is not a store lookup); an operation that may change clients
// (job.cancel) empties it.
func TestSubmitKeepsClientCache(t *testing.T) {
	h := newHarness(t)
	admin := h.operator(t)
	ag, _ := h.activeClient(t, admin, "web1")
	lookups := func() float64 {
		return h.scrape(t).metricCount("scire_db_query_duration_seconds", lbl{"method": "ClientByFingerprint"})
	}
	mustCall(t, ag, "agent.heartbeat", nil) // loads the agent's client into the cache
	n := lookups()
	mustCall(t, ag, "agent.heartbeat", nil)
	if got := lookups(); got != n {
		t.Fatalf("a cached agent's heartbeat looked its certificate up (%v → %v): the cache cannot be observed", n, got)
	}
	var sub api.SubmitResult
	mustCall(t, admin, "job.submit", &sub, map[string]any{"script": "true", "targets": []string{"web1"}})
	got := multicall(t, admin,
		submitCall(map[string]any{"script": "echo a", "targets": []string{"web1"}}),
		submitCall(map[string]any{"script": "echo b", "targets": []string{"web1"}}),
		submitCall(map[string]any{"script": "", "targets": []string{"web1"}}),
	)
	entryID(t, 0, got[0])
	entryID(t, 1, got[1])
	mustCall(t, ag, "agent.heartbeat", nil)
	if got := lookups(); got != n {
		t.Errorf("after job.submit an agent's certificate was looked up again (%v → %v): job.submit emptied the cache", n, got)
	}
	// The control: job.cancel may change clients, and empties the cache.
	mustCall(t, admin, "job.cancel", nil, sub.ID)
	mustCall(t, ag, "agent.heartbeat", nil)
	if got := lookups(); got != n+1 {
		t.Errorf("after job.cancel ClientByFingerprint ran %v times, want %v: the cache was not emptied", got, n+1)
	}
}

// TestSubmitBatchBlacklisted: a blacklisted job.submit refuses every call
// of a batch with 405 and records each refusal, as it does for separate
// calls.
func TestSubmitBatchBlacklisted(t *testing.T) {
	h := newHarness(t)
	admin := h.operator(t)
	h.activeClient(t, admin, "web1")
	mustCall(t, admin, "blacklist.add", nil, []string{"job.submit"})
	job := map[string]any{"script": "true", "targets": []string{"web1"}}
	got := multicall(t, admin, submitCall(job), submitCall(job), submitCall(job))
	for i, e := range got {
		entryFault(t, i, e, 405, "job.submit")
	}
	var trail []api.AuditEntry
	mustCall(t, admin, "audit.list", &trail, map[string]any{"operation": "job.submit"})
	if len(trail) != 3 {
		t.Fatalf("audit %+v: want one blacklisted record per call", trail)
	}
	for _, e := range trail {
		if e.Outcome != "blacklisted" {
			t.Errorf("audit entry %+v, want blacklisted", e)
		}
	}
}
