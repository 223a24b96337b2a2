package commands

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/xmlrpc"
)

// complete runs cobra's hidden __complete command, as the shell scripts
// do, and returns the candidates' values.
func complete(t *testing.T, conn []string, args ...string) []string {
	t.Helper()
	// The connection flags go right after the command path (two words in
	// every case here): the word being completed, a flag's value too, is last.
	line := append(append(append([]string{"__complete"}, args[:2]...), conn...), args[2:]...)
	out, errOut, code := run(t, "", line...)
	if code != 0 {
		t.Fatalf("__complete %v: exit %d: %s", args, code, errOut)
	}
	var vals []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, ":") || l == "" {
			continue // the directive
		}
		vals = append(vals, completionValue(l))
	}
	return vals
}

func TestDynamicCompletion(t *testing.T) {
	fixClock(t, goldenNow)
	_, conn := startFake(t, map[string]func(xmlrpc.Params) any{
		"job.list":    fixed(goldenJobs()),
		"client.list": fixed(goldenClients()),
		"group.list": func(p xmlrpc.Params) any {
			if len(p) == 1 && p[0] == "user" {
				return []api.Group{{Kind: "user", Name: "ops"}}
			}
			return []api.Group{{Kind: "client", Name: "web", Note: "front ends", Members: []string{"web1"}}, {Kind: "client", Name: "all"}}
		},
		"ops.list":  fixed([]api.Op{{ID: "42", Name: "db.backup", State: "running", User: "admin"}}),
		"user.list": fixed([]api.User{{Name: "admin"}, {Name: "alice"}}),
		"acl.list":  fixed([]api.ACLRule{{ID: "3", Action: "allow", Subject: "user:alice", Permission: "run", Target: "*"}}),
	})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"job", "status", ""}, "7 6"},
		{[]string{"job", "output", ""}, "7 6"},
		{[]string{"job", "cancel", ""}, "7 6"},
		{[]string{"job", "status", "7", ""}, ""},
		{[]string{"job", "delete", ""}, "6"}, // job 7 still runs
		{[]string{"job", "delete", "6", ""}, ""},
		{[]string{"client", "accept", ""}, "db1"},
		{[]string{"client", "reject", ""}, "db1"},
		{[]string{"client", "revoke", ""}, "web1"},
		{[]string{"client", "delete", ""}, "db1"},
		{[]string{"client", "show", ""}, "web1 db1"},
		{[]string{"client", "show", "web1", ""}, ""},
		{[]string{"client", "label", ""}, "web1 db1"},
		{[]string{"client", "label", "web1", ""}, "db1"},
		{[]string{"client", "label", "web1", "env=prod", ""}, ""},
		{[]string{"client", "label", "web1", "tier-", ""}, ""},
		{[]string{"job", "submit", "--target", ""}, "web1"},
		{[]string{"job", "submit", "--group", ""}, "web all"},
		{[]string{"group", "show", ""}, "client user"},
		{[]string{"group", "show", "client", ""}, "web all"},
		{[]string{"group", "show", "user", ""}, "ops"},
		{[]string{"group", "add", "client", "web", ""}, "web1 db1 group:web group:all"},
		{[]string{"group", "add", "user", "ops", ""}, "admin alice group:ops"},
		{[]string{"ops", "cancel", ""}, "42"},
		{[]string{"user", "delete", ""}, "admin alice"},
		{[]string{"acl", "remove", ""}, "3"},
		{[]string{"job", "list", "-o", ""}, "table wide json"},
		{[]string{"client", "list", "--status", ""}, "pending active rejected revoked"},
	} {
		if got := strings.Join(complete(t, conn, c.args...), " "); got != c.want {
			t.Errorf("complete %q: %q, want %q", c.args, got, c.want)
		}
	}
	// Without a server, nothing (and no error).
	noServer := []string{"--server", "127.0.0.1:1", "--token", "x"}
	if got := complete(t, noServer, "job", "status", ""); len(got) != 0 {
		t.Errorf("complete without a server: %q", got)
	}
	// Operation names need no server.
	if got := complete(t, noServer, "blacklist", "check", "job.s"); !strings.Contains(strings.Join(got, " "), "job.submit") {
		t.Errorf("complete blacklist check: %q", got)
	}
}

// TestBashCompletionParses runs bash -n on the generated bash completion.
func TestBashCompletionParses(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		if os.Getenv("SCIRE_REQUIRE_ALL") != "" {
			t.Fatal("bash is required (SCIRE_REQUIRE_ALL is set) but not found")
		}
		t.Skip("no bash")
	}
	path := filepath.Join(t.TempDir(), "scirectl.bash")
	if err := NewRoot(System()).GenBashCompletionFileV2(path, true); err != nil {
		t.Fatal(err)
	}
	_, file, _, _ := runtime.Caller(0)
	committed := filepath.Join(filepath.Dir(file), "..", "completions", "scirectl.bash")
	for _, p := range []string{path, committed} {
		if out, err := exec.Command(bash, "-n", p).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", p, err, out)
		}
	}
}
