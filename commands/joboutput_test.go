package commands

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/xmlrpc"
)

// runAt is a run as a fake job.output sees it at one call: its state, its
// exit code and the whole of its output stream so far.
type runAt struct {
	client string
	state  string
	exit   *int
	stream string
}

// outputStream is a fake job.output for job output --follow: its n-th call
// sees steps[n-1] (the last step once past them), a map of run id to run,
// and answers with each run's output from the offset the call gives for
// it, or whole without one, as the server does. Each call keeps what the
// command had printed by then, and may run a hook first.
type outputStream struct {
	t     *testing.T
	steps []map[string]runAt
	out   *bytes.Buffer // the command's standard output

	mu     sync.Mutex
	calls  int
	params []xmlrpc.Params
	seen   []string       // standard output as each call found it
	hook   func(call int) // called at each call, before it answers
}

func (s *outputStream) reply(p xmlrpc.Params) any {
	s.mu.Lock()
	s.calls++
	n := s.calls
	s.params = append(s.params, p)
	// The command writes its standard output in the goroutine that makes
	// this call: reading it here races with nothing.
	s.seen = append(s.seen, s.out.String())
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	step := s.steps[min(n, len(s.steps))-1]
	client := ""
	if p.Has(1) {
		client, _ = p.String(1, "client")
	}
	offsets := map[string]any{}
	if p.Has(2) {
		st, err := p.Struct(2, "options")
		if err != nil {
			s.t.Errorf("call %d: %v", n, err)
			return &xmlrpc.Fault{Code: 400, Message: err.Error()}
		}
		o, _, err := st.Struct("offsets")
		if err != nil {
			s.t.Errorf("call %d: %v", n, err)
			return &xmlrpc.Fault{Code: 400, Message: err.Error()}
		}
		offsets = o.Map()
	}
	var outs []api.Output
	for id, r := range step {
		if client != "" && r.client != client {
			continue
		}
		o := api.Output{RunID: id, Client: r.client, State: r.state, ExitCode: r.exit, Output: r.stream, Size: len(r.stream)}
		if v, ok := offsets[id]; ok {
			off, ok := v.(int64)
			if !ok || off < 0 || int(off) > len(r.stream) {
				s.t.Errorf("call %d: offset %v for run %s, whose stream is %d bytes", n, v, id, len(r.stream))
				return &xmlrpc.Fault{Code: 400, Message: "bad offset"}
			}
			o.Output = r.stream[off:]
		}
		outs = append(outs, o)
	}
	return outs
}

// runFollow runs a job output command line against a fake whose job.output
// is s and whose job.get answers job (none when nil). It returns standard
// output, standard error, the exit code and the fake.
func runFollow(t *testing.T, s *outputStream, job *api.Job, args ...string) (string, string, int, *fakeAPI) {
	t.Helper()
	old := followInterval
	followInterval = time.Millisecond
	t.Cleanup(func() { followInterval = old })
	var out, errOut bytes.Buffer
	s.t, s.out = t, &out
	replies := map[string]func(xmlrpc.Params) any{"job.output": s.reply}
	if job != nil {
		replies["job.get"] = fixed(*job)
	}
	fake := newFakeAPI(replies)
	code := ExecuteWith(fake.factory(&IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}), args)
	return out.String(), errOut.String(), code, fake
}

// twoRuns is a job of two runs whose output comes in three steps: web1
// writes whole lines and succeeds; web2 writes a line in two pieces and
// fails after a last line with no newline.
func twoRuns() []map[string]runAt {
	return []map[string]runAt{
		{"21": {client: "web1", state: "running", stream: "boot\nstep 1\n"},
			"22": {client: "web2", state: "running", stream: "hello "}},
		{"21": {client: "web1", state: "running", stream: "boot\nstep 1\n"},
			"22": {client: "web2", state: "running", stream: "hello world\nsec"}},
		{"21": {client: "web1", state: "succeeded", exit: ptr(0), stream: "boot\nstep 1\nstep 2\n"},
			"22": {client: "web2", state: "failed", exit: ptr(2), stream: "hello world\nsecond line\ntail"}},
	}
}

// TestFollowSeveralRuns follows a job of two runs: each poll's new output
// is printed before the next poll, line by line with the client's name in
// front, a partial line held back until its newline comes or its run
// ends; the polls carry the offsets read so far; the exit code is the
// job's outcome.
func TestFollowSeveralRuns(t *testing.T) {
	s := &outputStream{steps: twoRuns()}
	job := api.Job{ID: "7", Status: "failed", Counts: map[string]int{"succeeded": 1, "failed": 1}, SuccessThreshold: 100}
	out, errOut, code, fake := runFollow(t, s, &job, "job", "output", "7", "--follow")
	if code != ExitJobFailed {
		t.Errorf("exit %d, want %d; stderr %q", code, ExitJobFailed, errOut)
	}
	want := "web1: boot\nweb1: step 1\nweb2: hello world\nweb1: step 2\nweb2: second line\nweb2: tail\n"
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	// What had been printed when each poll came: the output arrives as
	// it is written, not all at the end.
	seen := []string{"", "web1: boot\nweb1: step 1\n", "web1: boot\nweb1: step 1\nweb2: hello world\n"}
	if len(s.seen) != len(seen) {
		t.Fatalf("%d polls, want %d (the last when both runs were final)", len(s.seen), len(seen))
	}
	for i, w := range seen {
		if s.seen[i] != w {
			t.Errorf("before poll %d the command had printed %q, want %q", i+1, s.seen[i], w)
		}
	}
	for i, want := range [][]any{
		{"7"},
		{"7", "", api.OutputRequest{Offsets: map[string]int{"21": 12, "22": 6}}},
		{"7", "", api.OutputRequest{Offsets: map[string]int{"21": 12, "22": 15}}},
	} {
		if !sameParams(t, s.params[i], want...) {
			t.Errorf("poll %d sent %v, want %v", i+1, s.params[i], wire(t, want...))
		}
	}
	if ms := fake.methods(); strings.Join(ms, " ") != "job.output job.output job.output job.get" {
		t.Errorf("calls %v, want three polls and one job.get", ms)
	}
	if !strings.Contains(errOut, "job 7: 2/2 done, 1 failed, 0 denied") {
		t.Errorf("stderr should end with the job's counts: %q", errOut)
	}
}

// TestFollowOneRunOutcomes follows a job of one run to each final state:
// its output is printed as it comes (a partial line too), and the exit
// code is --wait's.
func TestFollowOneRunOutcomes(t *testing.T) {
	for _, c := range []struct {
		state string
		exit  *int
		want  int
	}{
		{"succeeded", ptr(0), ExitOK},
		{"failed", ptr(1), ExitJobFailed},
		{"denied", nil, ExitJobDenied},
		{"skipped", nil, ExitJobGaveUp},
		{"cancelled", nil, ExitJobGaveUp},
	} {
		t.Run(c.state, func(t *testing.T) {
			s := &outputStream{steps: []map[string]runAt{
				{"5": {client: "db1", state: "running", stream: "50%"}},
				{"5": {client: "db1", state: "running", stream: "50%"}},
				{"5": {client: "db1", state: c.state, exit: c.exit, stream: "50%... 100%\n"}},
			}}
			job := api.Job{ID: "3", Counts: map[string]int{c.state: 1}, SuccessThreshold: 100}
			out, errOut, code, _ := runFollow(t, s, &job, "job", "output", "3", "-f")
			if code != c.want {
				t.Errorf("exit %d, want %d; stderr %q", code, c.want, errOut)
			}
			if out != "50%... 100%\n" {
				t.Errorf("stdout %q, want the run's output as is", out)
			}
			if len(s.seen) != 3 || s.seen[1] != "50%" {
				t.Errorf("one run's partial line should be printed at once: printed %q by the polls", s.seen)
			}
			if errOut != "" {
				t.Errorf("stderr %q, want nothing for one run", errOut)
			}
		})
	}
}

// TestFollowClient follows one run of a job of several: every poll names
// the client, the output is printed as is, and the exit code is that
// run's own (no job.get: the job as a whole may still be running).
func TestFollowClient(t *testing.T) {
	s := &outputStream{steps: twoRuns()}
	out, errOut, code, fake := runFollow(t, s, nil, "job", "output", "7", "-f", "--client", "web1")
	if code != ExitOK {
		t.Errorf("exit %d, want 0 (web1 succeeded); stderr %q", code, errOut)
	}
	if out != "boot\nstep 1\nstep 2\n" {
		t.Errorf("stdout %q, want web1's output as is", out)
	}
	for i, want := range [][]any{{"7", "web1"}, {"7", "web1", api.OutputRequest{Offsets: map[string]int{"21": 12}}}} {
		if !sameParams(t, s.params[i], want...) {
			t.Errorf("poll %d sent %v, want %v", i+1, s.params[i], wire(t, want...))
		}
	}
	for _, m := range fake.methods() {
		if m != "job.output" {
			t.Errorf("called %s; following one run needs only job.output", m)
		}
	}
	_, errOut, code, _ = runFollow(t, &outputStream{steps: twoRuns()}, nil, "job", "output", "7", "-f", "--client", "web2")
	if code != ExitJobFailed {
		t.Errorf("following web2, which failed: exit %d, want %d; stderr %q", code, ExitJobFailed, errOut)
	}
}

// TestFollowInterrupted stops a follow with Ctrl-C (SIGINT): exit code 130,
// the line held back printed, the job neither cancelled nor asked for.
func TestFollowInterrupted(t *testing.T) {
	steps := twoRuns()[:2]
	s := &outputStream{steps: steps}
	s.hook = func(n int) {
		if n == 2 {
			if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
				t.Error(err)
			}
		}
	}
	done := make(chan struct{})
	var out, errOut string
	var code int
	var fake *fakeAPI
	go func() {
		defer close(done)
		out, errOut, code, fake = runFollow(t, s, nil, "job", "output", "7", "-f")
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("SIGINT did not stop job output --follow")
	}
	if code != ExitInterrupted {
		t.Errorf("exit %d, want %d; stderr %q", code, ExitInterrupted, errOut)
	}
	if !strings.Contains(errOut, "stopped following; job 7 goes on (scirectl job output 7 -f)") {
		t.Errorf("stderr %q should say the job goes on", errOut)
	}
	if want := "web1: boot\nweb1: step 1\nweb2: hello world\nweb2: sec\n"; out != want {
		t.Errorf("stdout %q, want %q (the partial line printed on the way out)", out, want)
	}
	for _, m := range fake.methods() {
		if m != "job.output" {
			t.Errorf("called %s after Ctrl-C; the job must be left alone", m)
		}
	}
}

// TestFollowJSONLines follows with -o json: one compact object per line,
// for each run's new output or new state; put together, each run's pieces
// are its whole output.
func TestFollowJSONLines(t *testing.T) {
	s := &outputStream{steps: twoRuns()}
	job := api.Job{ID: "7", Counts: map[string]int{"succeeded": 1, "failed": 1}, SuccessThreshold: 100}
	out, errOut, code, _ := runFollow(t, s, &job, "job", "output", "7", "-f", "-o", "json")
	if code != ExitJobFailed {
		t.Errorf("exit %d, want %d; stderr %q", code, ExitJobFailed, errOut)
	}
	if errOut != "" {
		t.Errorf("stderr %q, want nothing with -o json", errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines, want 5 (two runs at first, web2's next piece, both runs at their end):\n%s", len(lines), out)
	}
	whole := map[string]string{}
	last := map[string]api.Output{}
	for _, l := range lines {
		var o api.Output
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("not a JSON object: %q: %v", l, err)
		}
		whole[o.Client] += o.Output
		last[o.Client] = o
	}
	final := twoRuns()[2]
	for _, r := range final {
		if whole[r.client] != r.stream {
			t.Errorf("%s: the pieces make %q, want %q", r.client, whole[r.client], r.stream)
		}
		if l := last[r.client]; l.State != r.state || l.Size != len(r.stream) || l.ExitCode == nil || *l.ExitCode != *r.exit {
			t.Errorf("%s: last line %+v, want state %s, size %d, exit %d", r.client, l, r.state, len(r.stream), *r.exit)
		}
	}
	if !strings.Contains(lines[0], `"omitted_bytes":0`) || !strings.Contains(lines[0], `"size":12`) {
		t.Errorf("a line should be an Output with all its fields: %s", lines[0])
	}
}

// TestFollowLongPartialLine: a line that never ends (a progress bar redrawn
// with \r) is printed once it passes maxPartialLine, not held back for ever.
func TestFollowLongPartialLine(t *testing.T) {
	var b bytes.Buffer
	f := newFollower(&b, false)
	long := strings.Repeat("#", maxPartialLine+10)
	if err := f.add([]api.Output{{RunID: "1", Client: "a", State: "running", Output: long, Size: len(long)},
		{RunID: "2", Client: "b", State: "running", Output: "x", Size: 1}}); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "a: "+long+"\n" {
		t.Errorf("printed %d bytes, want a's long line and nothing of b's partial line", len(got))
	}
	if f.done() {
		t.Error("done with both runs running")
	}
	if got := f.offsets(); got["1"] != len(long) || got["2"] != 1 {
		t.Errorf("offsets %v", got)
	}
}

// collapseCase is the runs of TestCollapse: three alike, two others.
func collapseCase() []api.Output {
	return []api.Output{
		{RunID: "4", Client: "web4", State: "succeeded", ExitCode: ptr(0), Output: "ok\n"},
		{RunID: "2", Client: "web2", State: "failed", ExitCode: ptr(1), Output: "disk full"},
		{RunID: "1", Client: "web1", State: "succeeded", ExitCode: ptr(0), Output: "ok\n"},
		{RunID: "5", Client: "db1", State: "failed", ExitCode: ptr(1), Output: "no such table\n"},
		{RunID: "3", Client: "web3", State: "succeeded", ExitCode: ptr(0), Output: "ok\n"},
	}
}

// TestCollapse groups identical outputs: each printed once under the
// clients that wrote it, the largest group first, then by first client.
func TestCollapse(t *testing.T) {
	runCases(t, []runCase{
		{args: []string{"job", "output", "7", "--collapse"},
			replies: map[string]func(xmlrpc.Params) any{"job.output": fixed(collapseCase())},
			method:  "job.output", params: []any{"7"},
			out: "---------------- web1,web3,web4 (3) ----------------\nok\n" +
				"---------------- db1 (1) ----------------\nno such table\n" +
				"---------------- web2 (1) ----------------\ndisk full\n"},
		{args: []string{"job", "output", "7", "--collapse", "-o", "json"},
			replies: map[string]func(xmlrpc.Params) any{"job.output": fixed(collapseCase())},
			method:  "job.output", params: []any{"7"},
			out: `[
  {
    "clients": [
      "web1",
      "web3",
      "web4"
    ],
    "count": 3,
    "output": "ok\n"
  },
  {
    "clients": [
      "db1"
    ],
    "count": 1,
    "output": "no such table\n"
  },
  {
    "clients": [
      "web2"
    ],
    "count": 1,
    "output": "disk full"
  }
]
`},
		{args: []string{"job", "output", "7", "--collapse", "-o", "json"},
			replies: map[string]func(xmlrpc.Params) any{"job.output": fixed([]api.Output{})},
			method:  "job.output", params: []any{"7"}, out: "[]\n"},
		{args: []string{"job", "output", "7", "--collapse", "--follow"}, code: ExitUsage, errOut: "use one or the other"},
		{args: []string{"job", "output", "7", "-f", "--collapse", "--client", "web1"}, code: ExitUsage, errOut: "--collapse"},
		{args: []string{"job", "output", "x", "-f"}, code: ExitUsage, errOut: "positive"},
		{args: []string{"job", "output", "7", "-f", "-o", "yaml"}, code: ExitUsage, errOut: "yaml"},
	})
}
