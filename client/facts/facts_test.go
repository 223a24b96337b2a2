package facts

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fakeMachine writes an os-release file and a proc directory and returns
// Options that read them, with a fixed host name, so that the built-in
// facts are the same on every machine but os, arch and cpus.
func fakeMachine(t *testing.T) Options {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "os-release"), "NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"12\"\n")
	write(t, filepath.Join(dir, "proc", "sys", "kernel", "osrelease"), "6.1.0-18-amd64\n")
	write(t, filepath.Join(dir, "proc", "meminfo"), "MemTotal:       16318176 kB\nMemFree:         1000000 kB\n")
	return Options{
		StateDir:     filepath.Join(dir, "state"),
		AgentVersion: "1.4.0+build.7",
		OSRelease:    filepath.Join(dir, "os-release"),
		ProcDir:      filepath.Join(dir, "proc"),
		Hostname:     func() (string, error) { return "web1.example.com", nil },
	}
}

// wantBuiltins are fakeMachine's built-in facts.
func wantBuiltins() Facts {
	return Facts{
		"hostname":      "web1.example.com",
		"os":            runtime.GOOS,
		"arch":          runtime.GOARCH,
		"kernel":        "6.1.0-18-amd64",
		"os_id":         "debian",
		"os_version":    "12",
		"cpus":          fmt.Sprint(runtime.NumCPU()),
		"memory_bytes":  fmt.Sprint(16318176 * 1024),
		"agent_version": "1.4.0+build.7",
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// factsFile writes a file into the state directory's facts.d.
func factsFile(t *testing.T, o Options, name, content string) string {
	t.Helper()
	p := filepath.Join(o.StateDir, "facts.d", name)
	write(t, p, content)
	return p
}

func problemStrings(ps []Problem) []string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Error())
	}
	return s
}

func wantNoProblems(t *testing.T, ps []Problem) {
	t.Helper()
	if len(ps) > 0 {
		t.Fatalf("problems:\n%s", strings.Join(problemStrings(ps), "\n"))
	}
}

func wantProblems(t *testing.T, ps []Problem, want ...string) {
	t.Helper()
	got := problemStrings(ps)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func wantFacts(t *testing.T, got, want Facts) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Fatalf("facts:\n%s\nwant:\n%s", got.canonical(), want.canonical())
	}
	if err := got.Check(); err != nil {
		t.Fatalf("Collect's facts fail Check: %v", err)
	}
}

func TestHash(t *testing.T) {
	a := Facts{"os": "linux", "arch": "amd64", "role": "web"}
	b := make(Facts)
	for _, k := range []string{"role", "arch", "os"} { // another insertion order
		b[k] = a[k]
	}
	if a.Hash() != b.Hash() {
		t.Fatalf("equal facts hash differently: %s, %s", a.Hash(), b.Hash())
	}
	// The canonical form, pinned: agents and servers of different
	// versions must agree on it.
	if got, want := string(a.canonical()), "arch=amd64\nos=linux\nrole=web\n"; got != want {
		t.Fatalf("canonical = %q, want %q", got, want)
	}
	if got, want := a.Hash(), "afd5a33e8cd184d56c8fba948c353271fbb36416344777b1bfa462d12b9688db"; got != want {
		t.Fatalf("Hash = %s, want %s (SHA-256 of the canonical form, lowercase hex)", got, want)
	}
	for _, c := range []Facts{
		{"os": "linux", "arch": "amd64"},                              // one fewer
		{"os": "linux", "arch": "amd64", "role": "db"},                // a value differs
		{"os": "linux", "arch": "amd64", "role": "web", "x": ""},      // an empty fact is a fact
		{"os": "linux", "arch": "amd64", "rol": "eweb"},               // the same characters, split elsewhere
		{"os": "linux", "arch": "amd64=linux", "role": "web"},         // no ambiguity through '='
		{"os": "linux", "arch": "amd64", "role": "web", "rolex": "1"}, // sorting of prefixes
	} {
		if c.Hash() == a.Hash() {
			t.Errorf("%v hashes as %v", c, a)
		}
	}
	if Facts(nil).Hash() != (Facts{}).Hash() {
		t.Error("nil and empty facts hash differently")
	}
	if got := (Facts{}).Hash(); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("empty facts hash %s, want SHA-256 of no bytes", got)
	}
}

func TestCheck(t *testing.T) {
	many := make(Facts)
	for i := range MaxFacts {
		many[fmt.Sprintf("f%02d", i)] = "x"
	}
	if err := many.Check(); err != nil {
		t.Fatalf("%d facts: %v", MaxFacts, err)
	}
	tooMany := maps.Clone(many)
	tooMany["one-more"] = "x"
	big := Facts{}
	for i := range 52 { // 52 lines of 318 bytes: 16536 bytes
		big[longKey(i)] = strings.Repeat("v", 253)
	}
	for _, tc := range []struct {
		f    Facts
		want string
	}{
		{Facts{"os": "linux", "example.com/rack": "r12", "empty": ""}, ""},
		{Facts{"os": "linux", "bad key": "x"}, `fact key "bad key": invalid character ' ' in key (allowed: letters, digits, '-', '_' and '.')`},
		{Facts{"os": "a b"}, `fact value "a b": invalid character ' ' in value (allowed: letters, digits, '-', '_', '.' and '+')`},
		{Facts{"fact.os": "linux"}, `fact key "fact.os": write "os": selectors add "fact." themselves`},
		{tooMany, "65 facts: at most 64"},
		{big, "facts of 16536 bytes: at most 16384"},
	} {
		got := ""
		if err := tc.f.Check(); err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("Check(%d facts) = %q, want %q", len(tc.f), got, tc.want)
		}
	}
}

// TestCollectBuiltins: with no custom facts, the built-in ones.
func TestCollectBuiltins(t *testing.T) {
	f, ps := Collect(context.Background(), fakeMachine(t))
	wantNoProblems(t, ps)
	wantFacts(t, f, wantBuiltins())
}

// TestCollectThisMachine reads the real machine: whatever it lacks is a
// problem, never a failure, and what every machine has is there.
func TestCollectThisMachine(t *testing.T) {
	f, ps := Collect(context.Background(), Options{AgentVersion: "dev"})
	for _, p := range ps {
		t.Logf("problem: %v", p)
	}
	for _, k := range []string{"os", "arch", "cpus", "agent_version"} {
		if f[k] == "" {
			t.Errorf("no %s fact in %v", k, f)
		}
	}
	if runtime.GOOS == "linux" {
		for _, k := range []string{"kernel", "memory_bytes"} {
			if f[k] == "" {
				t.Errorf("no %s fact on Linux in %v", k, f)
			}
		}
	}
	if err := f.Check(); err != nil {
		t.Error(err)
	}
}

func TestPrecedence(t *testing.T) {
	o := fakeMachine(t)
	factsFile(t, o, "10-site.facts", "role=web\nrack=r1\nos_id=custom\n")
	factsFile(t, o, "20-local.facts", "rack=r2\ndc=fra\n")
	o.Flags = []string{"dc=ams", "hostname=web1"}
	f, ps := Collect(context.Background(), o)
	wantNoProblems(t, ps)
	want := wantBuiltins()
	want["role"] = "web"      // 10-site
	want["rack"] = "r2"       // 20-local over 10-site
	want["os_id"] = "custom"  // facts.d over built-in
	want["dc"] = "ams"        // --fact over facts.d
	want["hostname"] = "web1" // --fact over built-in
	wantFacts(t, f, want)
}

// TestLimitCount: past MaxFacts, the built-in facts are kept and the
// custom ones taken in key order; each left out is a problem naming
// where it came from.
func TestLimitCount(t *testing.T) {
	o := fakeMachine(t)
	var b strings.Builder
	for i := range MaxFacts {
		fmt.Fprintf(&b, "c%02d=x\n", MaxFacts-1-i) // written in reverse order
	}
	p := factsFile(t, o, "many.facts", b.String())
	f, ps := Collect(context.Background(), o)
	builtins := len(wantBuiltins())
	if len(f) != MaxFacts {
		t.Fatalf("%d facts, want %d", len(f), MaxFacts)
	}
	for k := range wantBuiltins() {
		if _, ok := f[k]; !ok {
			t.Errorf("built-in fact %s left out", k)
		}
	}
	var want []string
	for i := MaxFacts - builtins; i < MaxFacts; i++ {
		line := MaxFacts - i // c63 is on line 1
		want = append(want, fmt.Sprintf("%s:%d: fact \"c%02d\" left out: more than 64 facts", p, line, i))
		if _, ok := f[fmt.Sprintf("c%02d", i)]; ok {
			t.Errorf("c%02d kept", i)
		}
	}
	wantProblems(t, ps, want...)
	if ps[0].Key != fmt.Sprintf("c%02d", MaxFacts-builtins) {
		t.Errorf("problem's key = %q", ps[0].Key)
	}
	// The same facts, the same result.
	f2, _ := Collect(context.Background(), o)
	if f.Hash() != f2.Hash() {
		t.Error("the limit left out different facts the second time")
	}
}

// longKey is a key of the greatest length a key without a prefix has.
func longKey(i int) string { return fmt.Sprintf("%s%02d", strings.Repeat("k", 61), i) }

// TestLimitBytes: a fact that would take the facts past MaxBytes is left
// out, and a smaller one after it may still fit.
func TestLimitBytes(t *testing.T) {
	o := fakeMachine(t)
	size := 0
	for k, v := range wantBuiltins() {
		size += len(k) + len(v) + 2
	}
	v := strings.Repeat("v", 253)
	line := len(longKey(0)) + len(v) + 2
	var b strings.Builder
	n := 0
	for ; size+line <= MaxBytes; n++ {
		fmt.Fprintf(&b, "%s=%s\n", longKey(n), v)
		size += line
	}
	fmt.Fprintf(&b, "%s=%s\n", longKey(n), v) // does not fit
	room := MaxBytes - size
	small := strings.Repeat("s", room-len("small=")-1)
	fmt.Fprintf(&b, "small=%s\n", small) // taken after the long keys, fits exactly
	fmt.Fprintf(&b, "tiny=\n")           // one byte too many
	p := factsFile(t, o, "big.facts", b.String())
	f, ps := Collect(context.Background(), o)
	wantProblems(t, ps,
		fmt.Sprintf(`%s:%d: fact %q left out: the facts would be more than 16384 bytes`, p, n+1, longKey(n)),
		fmt.Sprintf(`%s:%d: fact "tiny" left out: the facts would be more than 16384 bytes`, p, n+3),
	)
	if f["small"] != small {
		t.Error("the fact that fits exactly was left out")
	}
	if got := len(f.canonical()); got != MaxBytes {
		t.Errorf("canonical form of %d bytes, want %d", got, MaxBytes)
	}
	if err := f.Check(); err != nil {
		t.Error(err)
	}
}
