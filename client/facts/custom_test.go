package facts

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	allowedKey   = "(allowed: letters, digits, '-', '_' and '.')"
	allowedValue = "(allowed: letters, digits, '-', '_', '.' and '+')"
)

func TestParseFlag(t *testing.T) {
	for _, tc := range []struct{ in, key, value, err string }{
		{"role=web", "role", "web", ""},
		{"example.com/rack=r12", "example.com/rack", "r12", ""},
		{"empty=", "empty", "", ""},
		{" role = web ", "role", "web", ""},
		{"version=1.2.0+build.7", "version", "1.2.0+build.7", ""},
		{"", "", "", `--fact "": missing '=': write KEY=VALUE`},
		{"role", "", "", `--fact "role": missing '=': write KEY=VALUE`},
		{"=web", "", "", `--fact "=web": fact key is empty`},
		{"ro le=web", "", "", `--fact "ro le=web": fact key "ro le": invalid character ' ' in key ` + allowedKey},
		{"role=a=b", "", "", `--fact "role=a=b": fact value "a=b": invalid character '=' in value ` + allowedValue},
		{"role=web server", "", "", `--fact "role=web server": fact value "web server": invalid character ' ' in value ` + allowedValue},
		{"fact.role=web", "", "", `--fact "fact.role=web": fact key "fact.role": write "role": selectors add "fact." themselves`},
		{"role=\"web\"", "", "", `--fact "role=\"web\"": fact value "\"web\"": invalid character '"' in value ` + allowedValue + `; values are not quoted`},
	} {
		k, v, err := ParseFlag(tc.in)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if k != tc.key || v != tc.value || msg != tc.err {
			t.Errorf("ParseFlag(%q) = %q, %q, %q; want %q, %q, %q", tc.in, k, v, msg, tc.key, tc.value, tc.err)
		}
	}
}

func TestParseFlags(t *testing.T) {
	f, err := ParseFlags([]string{"role=web", "dc=fra"})
	if err != nil || len(f) != 2 || f["role"] != "web" || f["dc"] != "fra" {
		t.Fatalf("ParseFlags = %v, %v", f, err)
	}
	if f, err := ParseFlags(nil); err != nil || len(f) != 0 {
		t.Fatalf("ParseFlags(nil) = %v, %v", f, err)
	}
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"role=web", "role=db"}, `--fact "role=db": role is also given by --fact "role=web"`},
		{[]string{"role=web", "dc"}, `--fact "dc": missing '=': write KEY=VALUE`},
	} {
		if _, err := ParseFlags(tc.in); err == nil || err.Error() != tc.want {
			t.Errorf("ParseFlags(%q) = %v, want %s", tc.in, err, tc.want)
		}
	}
}

// TestCollectFlags: in Collect, a bad flag is a problem and left out;
// of a key given twice, the later wins.
func TestCollectFlags(t *testing.T) {
	o := fakeMachine(t)
	o.Flags = []string{"role=web", "bad", "dc=fra", "role=db", "x=a b"}
	f, ps := Collect(context.Background(), o)
	wantProblems(t, ps,
		`--fact "bad": missing '=': write KEY=VALUE`,
		`--fact "role=db": role is also given by --fact "role=web": the later wins`,
		`--fact "x=a b": fact value "a b": invalid character ' ' in value `+allowedValue,
	)
	want := wantBuiltins()
	want["role"] = "db"
	want["dc"] = "fra"
	wantFacts(t, f, want)
}

func TestFactsFile(t *testing.T) {
	o := fakeMachine(t)
	p := factsFile(t, o, "site.facts", strings.Join([]string{
		"# facts of the site",
		"",
		"role=web",
		"   # indented comment",
		"  rack = r12  ",
		"example.com/owner=team-a",
		"empty=",
		"broken",
		"bad key=x",
		"tier=a b",
		"dc=fra",
		"dc=ams",
		"version=2.0.0+rc.1\r",
		"last=no-newline",
	}, "\n"))
	f, ps := Collect(context.Background(), o)
	wantProblems(t, ps,
		p+`:8: missing '=': write KEY=VALUE`,
		p+`:9: fact key "bad key": invalid character ' ' in key `+allowedKey,
		p+`:10: fact value "a b": invalid character ' ' in value `+allowedValue,
		p+`:12: dc is also on line 11: the later wins`,
	)
	want := wantBuiltins()
	for k, v := range map[string]string{
		"role": "web", "rack": "r12", "example.com/owner": "team-a", "empty": "",
		"dc": "ams", "version": "2.0.0+rc.1", "last": "no-newline",
	} {
		want[k] = v
	}
	wantFacts(t, f, want)
	if ps[1].Line != 9 || ps[1].Source != p || ps[3].Key != "dc" {
		t.Errorf("problems %+v, %+v", ps[1], ps[3])
	}
}

// TestFactsDirEntries: what facts.d holds besides *.facts files and
// executables.
func TestFactsDirEntries(t *testing.T) {
	o := fakeMachine(t)
	f, ps := Collect(context.Background(), o) // no state directory yet: no facts.d, no problem
	wantNoProblems(t, ps)
	wantFacts(t, f, wantBuiltins())

	factsFile(t, o, "a.facts", "a=1\n")
	factsFile(t, o, ".hidden.facts", "hidden=1\n")
	factsFile(t, o, "b.facts~", "backup=1\n")
	readme := factsFile(t, o, "README", "what this is\n")
	factsFile(t, o, "sub.facts/c.facts", "c=1\n") // a directory, even named *.facts
	dir := filepath.Join(o.StateDir, "facts.d")
	if err := os.Symlink("a.facts", filepath.Join(dir, "z.facts")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere", filepath.Join(dir, "dangling.facts")); err != nil {
		t.Fatal(err)
	}
	f, ps = Collect(context.Background(), o)
	wantProblems(t, ps,
		readme+`: neither a *.facts file nor executable (chmod +x?): skipped`,
		filepath.Join(dir, "dangling.facts")+`: stat: no such file or directory`,
	)
	want := wantBuiltins()
	want["a"] = "1"
	wantFacts(t, f, want)
}

func TestFactsFileLimits(t *testing.T) {
	o := fakeMachine(t)
	big := factsFile(t, o, "big.facts", "a=1\n"+strings.Repeat("#", maxSourceBytes))
	var b strings.Builder
	for i := range maxSourceProblems + 5 {
		fmt.Fprintf(&b, "bad%d\n", i)
	}
	b.WriteString("good=1\n")
	noisy := factsFile(t, o, "noisy.facts", b.String())
	f, ps := Collect(context.Background(), o)
	want := []string{big + ": larger than 65536 bytes: no facts read"}
	for i := range maxSourceProblems {
		want = append(want, fmt.Sprintf("%s:%d: missing '=': write KEY=VALUE", noisy, i+1))
	}
	want = append(want, noisy+": 5 more problems not shown")
	wantProblems(t, ps, want...)
	wantF := wantBuiltins()
	wantF["good"] = "1"
	wantFacts(t, f, wantF)
}

func TestFactsFileUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	o := fakeMachine(t)
	p := factsFile(t, o, "secret.facts", "a=1\n")
	if err := os.Chmod(p, 0); err != nil {
		t.Fatal(err)
	}
	_, ps := Collect(context.Background(), o)
	wantProblems(t, ps, p+": open: permission denied")
}
