package jobxml

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
	"time"
)

func baseJob() Job {
	return Job{ID: 42, Run: 1042, Attempt: 1, Name: "uptime", Permission: "run", Priority: 5,
		SubmittedBy: "alice", Timeout: 300 * time.Second, Interpreter: "/bin/sh", Script: "uptime"}
}

// hostile is text chosen to break a careless encoder: CDATA terminators in
// every position, markup, line ends that parsers normalise, and Unicode that
// byte-oriented code likes to mangle.
func hostile() []struct{ name, text string } {
	var lines strings.Builder
	for i := range 100_000 {
		fmt.Fprintf(&lines, "echo line %d\n", i)
	}
	unit := "0123456789abcdef]]>\r\n<&>'\"\t日本\U0001F680"
	mb := strings.Repeat(unit, 1<<20/len(unit)+1) // a little over 1 MiB
	return []struct{ name, text string }{
		{"empty", ""},
		{"plain", "uptime"},
		{"cdata end", "echo ']]>'"},
		{"cdata end at start", "]]>echo"},
		{"cdata end at end", "echo ]]>"},
		{"only cdata end", "]]>"},
		{"repeated brackets", "]]]]>>"},
		{"many terminators", "]]>]]>]]>]]]]]>>>]]"},
		{"brackets without end", "a[[b]]c]"},
		{"trailing brackets", "x]]"},
		{"cdata start inside", "<![CDATA[ nested ]]>"},
		{"cdata start alone", "<![CDATA["},
		{"markup", `<job version="2"><script/></job>`},
		{"entities", "&amp; &lt; &#xD; &#13; &nbsp; & < > ' \""},
		{"crlf", "line1\r\nline2\r\n"},
		{"lone cr", "a\rb\r"},
		{"cr at start", "\rstart"},
		{"cr only", "\r"},
		{"cr before terminator", "\r]]>\r"},
		{"lf cr", "a\n\rb"},
		{"tabs", "\tindented\t\ttext\t"},
		{"leading and trailing space", "  \n spaced \n  "},
		{"whitespace only", " \t\n"},
		{"cjk", "日本語のスクリプト 中文 한국어"},
		{"emoji", "🚀 👩‍👩‍👧‍👦 🏳️‍🌈 astral \U0010FFFD"},
		{"combining marks", "e\u0301 a\u0308\u0304 Z\u0351\u0352\u0353"},
		{"rtl", "\u202Eשלום עולם مرحبا\u202C"},
		{"c1 and del", "\x7F\u0080\u009F"},
		{"bom inside", "\uFEFFecho"},
		{"replacement char", "\uFFFD"},
		{"edge of bmp", "\uD7FF\uE000\uFFFD"},
		{"comment-like", "<!-- not a comment --> <?pi?>"},
		{"shell heredoc", "cat <<'EOF'\n$HOME ${x} `id` \\n\nEOF\n"},
		{"1 MB", mb},
		{"100k lines", lines.String()},
	}
}

func TestJobRoundTripHostileScripts(t *testing.T) {
	for _, c := range hostile() {
		t.Run(c.name, func(t *testing.T) {
			j := baseJob()
			j.Script = c.text
			b := mustEncodeJob(t, j)
			if bytes.IndexByte(b, '\r') >= 0 {
				t.Fatal("raw CR in the document: a parser would turn it into LF")
			}
			got, err := DecodeJob(b)
			if err != nil {
				t.Fatal(err)
			}
			if got != j {
				t.Fatalf("script changed:\n got %q\nwant %q", abbrev(got.Script, 200), abbrev(j.Script, 200))
			}
			// Deterministic: the same job always gives the same bytes.
			if b2 := mustEncodeJob(t, got); !bytes.Equal(b, b2) {
				t.Fatal("re-encoding the decoded job gave other bytes")
			}
			// encoding/xml's own unmarshalling sees the same script.
			var v struct {
				Script string `xml:"script"`
			}
			if err := xml.Unmarshal(b, &v); err != nil || v.Script != j.Script {
				t.Fatalf("xml.Unmarshal: %v, script equal: %v", err, v.Script == j.Script)
			}
		})
	}
}

func TestJobRoundTripHostileFields(t *testing.T) {
	for _, c := range hostile() {
		if len(c.text) > 1000 {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			j := baseJob()
			j.Name, j.SubmittedBy, j.Interpreter = c.text, c.text, "/usr/bin/env "+c.text
			if c.text != "" {
				j.Permission = c.text
			}
			b := mustEncodeJob(t, j)
			got, err := DecodeJob(b)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if got != j {
				t.Fatalf("fields changed:\n got %+v\nwant %+v", got, j)
			}
		})
	}
}

func TestJobRoundTripValues(t *testing.T) {
	for _, j := range []Job{
		baseJob(),
		{ID: 1, Run: 1, Attempt: 1, Permission: "run", Interpreter: "sh"},                       // empty strings, no timeout
		{ID: 1<<63 - 1, Run: 1<<63 - 1, Attempt: 1<<31 - 1, Permission: "x", Interpreter: "sh"}, // largest ids
		{ID: 7, Run: 8, Attempt: 3, Permission: "admin", Priority: -100, Interpreter: "sh", Timeout: time.Second},
		{ID: 7, Run: 8, Attempt: 3, Permission: "run", Priority: 1<<31 - 1, Interpreter: "sh", Timeout: time.Duration(maxTimeoutSeconds) * time.Second},
	} {
		got, err := DecodeJob(mustEncodeJob(t, j))
		if err != nil || got != j {
			t.Errorf("%+v: got %+v, %v", j, got, err)
		}
	}
}

func TestEncodeJobDefaultsPermission(t *testing.T) {
	j := baseJob()
	j.Permission = ""
	got, err := DecodeJob(mustEncodeJob(t, j))
	if err != nil || got.Permission != DefaultPermission {
		t.Fatalf("got %q, %v", got.Permission, err)
	}
}

// The encoder writes exactly the document docs/job-xml.md shows.
func TestEncodeJobMatchesSpecExample(t *testing.T) {
	want := `<job version="1" id="42" run="1042" attempt="1">
  <name>uptime</name>
  <permission>run</permission>
  <priority>5</priority>
  <submitted-by>alice</submitted-by>
  <timeout>300</timeout>
  <script interpreter="/bin/sh"><![CDATA[uptime]]></script>
</job>
`
	if got := string(mustEncodeJob(t, baseJob())); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestEncodeJobWireForms(t *testing.T) {
	j := baseJob()
	j.Timeout = 0
	j.Name = `a<b & "c" > ]]>` + "\r"
	j.Interpreter = "/bin/sh -c\t\"x\"\n\r"
	j.Script = "a]]>b\r\nc"
	want := `<job version="1" id="42" run="1042" attempt="1">
  <name>a&lt;b &amp; "c" &gt; ]]&gt;&#xD;</name>
  <permission>run</permission>
  <priority>5</priority>
  <submitted-by>alice</submitted-by>
  <script interpreter="/bin/sh -c&#x9;&quot;x&quot;&#xA;&#xD;"><![CDATA[a]]]]><![CDATA[>b]]>&#xD;<![CDATA[
c]]></script>
</job>
`
	if got := string(mustEncodeJob(t, j)); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestEncodeJobRefusesInvalidJobs(t *testing.T) {
	for _, c := range []struct {
		set  func(*Job)
		want string
	}{
		{func(j *Job) { j.ID = 0 }, "job document: id: 0 is not positive"},
		{func(j *Job) { j.Run = -3 }, "job document: run: -3 is not positive"},
		{func(j *Job) { j.Attempt = 0 }, "job document: attempt: 0 is less than 1"},
		{func(j *Job) { j.Timeout = -time.Second }, "job document: timeout: -1s is negative"},
		{func(j *Job) { j.Timeout = 1500 * time.Millisecond }, "job document: timeout: 1.5s is not a whole number of seconds"},
		{func(j *Job) { j.Interpreter = "" }, "job document: interpreter: must not be empty"},
	} {
		j := baseJob()
		c.set(&j)
		if _, err := EncodeJob(j); err == nil || err.Error() != c.want {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
}

func mustEncodeJob(t testing.TB, j Job) []byte {
	t.Helper()
	b, err := EncodeJob(j)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	t1 = time.Date(2026, 11, 22, 10, 0, 1, 0, time.UTC)
)

func intp(n int) *int { return &n }

func statusEqual(a, b Status) bool {
	if (a.Exit == nil) != (b.Exit == nil) || a.Exit != nil && *a.Exit != *b.Exit {
		return false
	}
	return a.Run == b.Run && a.State == b.State && a.Started.Equal(b.Started) && a.Finished.Equal(b.Finished) &&
		a.Reason == b.Reason && a.Output == b.Output && a.Truncated == b.Truncated
}

func TestStatusRoundTripHostileOutput(t *testing.T) {
	for _, c := range hostile() {
		t.Run(c.name, func(t *testing.T) {
			ss := []Status{
				{Run: 1, State: StateSucceeded, Exit: intp(0), Started: t0, Finished: t1, Output: c.text},
				{Run: 2, State: StateFailed, Exit: intp(2), Finished: t1, Output: c.text, Truncated: true},
			}
			for _, in := range [][]Status{ss[:1], ss} { // both root forms
				b, err := EncodeStatuses(in)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.IndexByte(b, '\r') >= 0 {
					t.Fatal("raw CR in the document")
				}
				got, err := DecodeStatuses(b)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(in) {
					t.Fatalf("%d statuses, want %d", len(got), len(in))
				}
				for i := range in {
					if !statusEqual(got[i], in[i]) {
						t.Fatalf("status %d changed:\n got %+v\nwant %+v", i, abbrevStatus(got[i]), abbrevStatus(in[i]))
					}
				}
			}
		})
	}
}

func abbrevStatus(s Status) Status {
	s.Output = abbrev(s.Output, 100)
	return s
}

func TestStatusRoundTripValues(t *testing.T) {
	nano := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	local := time.Date(2026, 6, 1, 12, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	for _, st := range []Status{
		{Run: 1, State: StateRunning},
		{Run: 1, State: StateRunning, Started: nano, Output: "partial", Truncated: false},
		{Run: 1<<63 - 1, State: StateSucceeded, Exit: intp(0), Finished: t0},
		{Run: 5, State: StateFailed, Exit: intp(-1), Started: t0, Finished: t0},
		{Run: 5, State: StateFailed, Exit: intp(255), Started: t0, Finished: t1, Output: "boom\n"},
		{Run: 5, State: StateFailed, Exit: intp(3221225477), Finished: t1}, // a Windows NTSTATUS
		{Run: 5, State: StateFailed, Started: t0, Finished: t1, Reason: "timeout", Truncated: true},
		{Run: 5, State: StateFailed, Started: local, Finished: local, Reason: "start-failed", Output: "exec: no such file"},
		{Run: 5, State: StateFailed, Finished: t1, Reason: "a0123456789-bcdefghijklmnopqrstu"}, // 32 characters
		{Run: 5, State: StateFailed, Finished: MaxTime, Reason: "lost"},
		{Run: 5, State: StateFailed, Started: MinTime, Finished: MinTime.Add(time.Nanosecond), Reason: "lost"},
	} {
		b, err := EncodeStatuses([]Status{st})
		if err != nil {
			t.Errorf("%+v: %v", st, err)
			continue
		}
		got, err := DecodeStatuses(b)
		if err != nil || len(got) != 1 || !statusEqual(got[0], st) {
			t.Errorf("%+v:\n%s\ngot %+v, %v", st, b, got, err)
		}
		if err == nil && (got[0].Started.Location() != time.UTC || got[0].Finished.Location() != time.UTC) {
			t.Errorf("decoded times are not in UTC")
		}
	}
}

func TestEncodeStatusesMatchesSpecExample(t *testing.T) {
	want := `<status run="1042" state="succeeded" exit="0" started="2026-11-22T10:00:00Z" finished="2026-11-22T10:00:01Z">
  <output truncated="false"><![CDATA[ 10:00:01 up 3 days ...]]></output>
</status>
`
	b, err := EncodeStatuses([]Status{{Run: 1042, State: StateSucceeded, Exit: intp(0), Started: t0, Finished: t1, Output: " 10:00:01 up 3 days ..."}})
	if err != nil || string(b) != want {
		t.Fatalf("got\n%s\nwant\n%s (%v)", b, want, err)
	}
}

func TestEncodeStatusesSeveral(t *testing.T) {
	want := `<statuses version="1">
  <status run="1" state="running" started="2026-11-22T10:00:00Z"/>
  <status run="2" state="failed" started="2026-11-22T10:00:00Z" finished="2026-11-22T10:00:01Z" reason="timeout">
    <output truncated="true"><![CDATA[a]]></output>
  </status>
  <status run="3" state="failed" finished="2026-11-22T10:00:01Z" reason="killed">
    <output truncated="true"></output>
  </status>
</statuses>
`
	b, err := EncodeStatuses([]Status{
		{Run: 1, State: StateRunning, Started: t0},
		{Run: 2, State: StateFailed, Started: t0, Finished: t1, Reason: "timeout", Output: "a", Truncated: true},
		{Run: 3, State: StateFailed, Finished: t1, Reason: "killed", Truncated: true},
	})
	if err != nil || string(b) != want {
		t.Fatalf("got\n%s\nwant\n%s (%v)", b, want, err)
	}
}

func TestEncodeStatusesRefusesInvalidStatuses(t *testing.T) {
	for _, c := range []struct {
		st   Status
		want string
	}{
		{Status{Run: 0, State: StateRunning}, "run 0: run 0 is not a positive whole number"},
		{Status{Run: 1, State: "done"}, `run 1: state "done" is not one of running, succeeded, failed`},
		{Status{Run: 1}, "run 1: state is missing"},
		{Status{Run: 1, State: StateRunning, Exit: intp(0)}, `run 1: exit is not allowed with state="running": the process has not exited`},
		{Status{Run: 1, State: StateRunning, Finished: t1}, `run 1: finished is not allowed with state="running"`},
		{Status{Run: 1, State: StateRunning, Reason: "x"}, `run 1: reason is only allowed with state="failed"`},
		{Status{Run: 1, State: StateSucceeded, Finished: t1}, `run 1: state="succeeded" requires exit="0"`},
		{Status{Run: 1, State: StateSucceeded, Exit: intp(1), Finished: t1}, `run 1: state="succeeded" contradicts exit="1": a non-zero exit is a failure`},
		{Status{Run: 1, State: StateSucceeded, Exit: intp(0)}, `run 1: state="succeeded" requires finished`},
		{Status{Run: 1, State: StateFailed, Exit: intp(0), Finished: t1}, `run 1: state="failed" contradicts exit="0": exit 0 is a success; a run stopped from outside has no exit, only a reason`},
		{Status{Run: 1, State: StateFailed, Started: t1, Finished: t0}, "run 1: finished 2026-11-22T10:00:00Z is before started 2026-11-22T10:00:01Z"},
		{Status{Run: 1, State: StateFailed, Finished: t1, Reason: "Timeout"}, `run 1: reason "Timeout" is not a word of the form [a-z][a-z0-9-]{0,31}`},
		{Status{Run: 1, State: StateFailed, Finished: t1, Reason: "time out"}, `run 1: reason "time out" is not a word of the form [a-z][a-z0-9-]{0,31}`},
		{Status{Run: 1, State: StateFailed, Finished: t1, Reason: strings.Repeat("a", 33)}, `run 1: reason "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" is not a word of the form [a-z][a-z0-9-]{0,31}`},
		{Status{Run: 1, State: StateFailed, Finished: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "run 1: finished is outside " + TimeRange + ", the times scirectl stores"},
		{Status{Run: 1, State: StateFailed, Finished: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}, "run 1: finished is outside " + TimeRange + ", the times scirectl stores"},
		{Status{Run: 1, State: StateFailed, Finished: MaxTime.Add(time.Nanosecond)}, "run 1: finished is outside " + TimeRange + ", the times scirectl stores"},
		{Status{Run: 1, State: StateRunning, Started: time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)}, "run 1: started is outside " + TimeRange + ", the times scirectl stores"},
	} {
		if _, err := EncodeStatuses([]Status{c.st}); err == nil || err.Error() != "status document: "+c.want {
			t.Errorf("got %v, want %q", err, "status document: "+c.want)
		}
	}
	if _, err := EncodeStatuses(nil); err == nil || err.Error() != "status document: no status to encode" {
		t.Errorf("empty: %v", err)
	}
	many := make([]Status, MaxStatuses+1)
	for i := range many {
		many[i] = Status{Run: int64(i + 1), State: StateRunning}
	}
	if _, err := EncodeStatuses(many); err == nil || err.Error() != "status document: 10001 statuses, at most 10000 in one document" {
		t.Errorf("too many: %v", err)
	}
	b, err := EncodeStatuses(many[:MaxStatuses])
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeStatuses(b); err != nil || len(got) != MaxStatuses {
		t.Fatalf("%d statuses: %v", len(got), err)
	}
}

// TestCheckTime holds the exported range to what the drivers store: the
// ends are accepted, one nanosecond beyond them is not, and both ends
// survive a round trip through Unix nanoseconds.
func TestCheckTime(t *testing.T) {
	for _, ok := range []time.Time{MinTime, MaxTime, time.Date(2026, 11, 22, 10, 0, 0, 0, time.FixedZone("x", 3600))} {
		if err := CheckTime(ok); err != nil {
			t.Errorf("CheckTime(%v) = %v, want nil", ok, err)
		}
		if back := time.Unix(0, ok.UnixNano()); !back.Equal(ok) {
			t.Errorf("%v comes back from Unix nanoseconds as %v", ok, back)
		}
	}
	for _, bad := range []time.Time{{}, time.Unix(0, 0), MinTime.Add(-time.Nanosecond), MaxTime.Add(time.Nanosecond),
		time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)} {
		err := CheckTime(bad)
		if err == nil || !strings.Contains(err.Error(), " is outside "+TimeRange) {
			t.Errorf("CheckTime(%v) = %v, want outside %s", bad, err, TimeRange)
		}
	}
	if got := CheckTime(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)).Error(); got != "9999-01-01T00:00:00Z is outside "+TimeRange+", the times scirectl stores" {
		t.Errorf("message: %q", got)
	}
	if !MaxTime.Equal(time.Unix(0, 1<<63-1).Truncate(time.Second)) || !MinTime.Equal(time.Unix(1, 0)) {
		t.Errorf("MinTime %v, MaxTime %v: not the whole seconds of a positive int64 of nanoseconds", MinTime, MaxTime)
	}
}
