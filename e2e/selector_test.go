package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
)

// Agents started with --fact role=web or role=db, one of them labelled:
// a job submitted with --selector fact.role=web reaches exactly the web
// agents, client list selects by facts and labels, client show lists
// both, and --target globs pick by name.
func TestSelectorsEndToEnd(t *testing.T) {
	srv := startServer(t, t.TempDir())
	names := []string{"sel-web-1", "sel-web-2", "sel-db-1", "sel-db-2"}
	agents := newFleet(srv, t.TempDir(), nil, names, nil)
	for _, a := range agents {
		role := "db"
		if a.name[4:7] == "web" {
			role = "web"
		}
		a.args = []string{"--fact", "role=" + role}
	}
	startFleet(t, srv, agents)
	eventually(t, 20*time.Second, "the agents' facts", func() bool {
		var cs []api.Client
		srv.cliJSON(t, &cs, "client", "list", "--selector", "fact.role")
		return len(cs) == 4
	})
	if out, errOut, code := srv.cli(t, "", "client", "label", "sel-db-2", "env=prod"); code != 0 {
		t.Fatalf("client label: exit %d %s%s", code, out, errOut)
	}
	runsOn := func(id string) []string {
		waitFinal(t, srv, id)
		var out []string
		for _, r := range jobStatus(t, srv, id).Runs {
			if r.State != "succeeded" {
				t.Fatalf("run on %s is %s", r.Client, r.State)
			}
			out = append(out, r.Client)
		}
		slices.Sort(out)
		return out
	}
	id := submitJSON(t, srv, "--selector", "fact.role=web", "-c", "true")
	if got := runsOn(id); !slices.Equal(got, []string{"sel-web-1", "sel-web-2"}) {
		t.Fatalf("--selector fact.role=web ran on %v", got)
	}
	id = submitJSON(t, srv, "--selector", "fact.role=db,!env", "--selector", "env=prod", "-c", "true")
	if got := runsOn(id); !slices.Equal(got, []string{"sel-db-1", "sel-db-2"}) {
		t.Fatalf("two selectors ran on %v", got)
	}
	id = submitJSON(t, srv, "--target", "sel-web-*", "--target", "sel-db-1", "-c", "true")
	if got := runsOn(id); !slices.Equal(got, []string{"sel-db-1", "sel-web-1", "sel-web-2"}) {
		t.Fatalf("--target 'sel-web-*' ran on %v", got)
	}
	var cs []api.Client
	srv.cliJSON(t, &cs, "client", "list", "--selector", "env=prod")
	if len(cs) != 1 || cs[0].Name != "sel-db-2" {
		t.Fatalf("client list --selector env=prod: %+v", cs)
	}
	var c api.Client
	srv.cliJSON(t, &c, "client", "show", "sel-web-1")
	if c.Facts["role"] != "web" || c.Facts["os"] == "" || c.Facts["cpus"] == "" {
		t.Fatalf("client show facts: %v", c.Facts)
	}
	if _, errOut, code := srv.cli(t, "", "job", "submit", "--selector", "env in (prod", "-c", "true"); code != 2 {
		t.Fatalf("a bad selector: exit %d, %s", code, errOut)
	}
}

// TestSelectorsPython: the facts, labels and selectors of the protocol from
// Python's xmlrpc.client (e2e/testdata/machines.py; not selectors.py, which would hide the standard library module of that name).
func TestSelectorsPython(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	var env []string
	for i := 1; i <= 3; i++ {
		certFile, keyFile := agentIdentity(t, dir, fmt.Sprint("agent", i))
		env = append(env, fmt.Sprintf("AGENT%d_CERT=%s", i, certFile), fmt.Sprintf("AGENT%d_KEY=%s", i, keyFile))
	}
	pythonCommand(t, srv, "machines.py", []string{"testdata/machines.py"}, env...)
}
