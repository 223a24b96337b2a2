package server

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/internal/testtool"
	"github.com/scirectl/scirectl/serverconfig"
)

// registerDaemon registers a new identity in daemon mode with callback.
func (h *harness) registerDaemon(t *testing.T, callback string) error {
	t.Helper()
	cert, _ := testtool.AgentIdentity(t)
	c, err := client.New(client.Options{Servers: []string{h.url}, RootCAs: h.pool(t).RootCAs, Certificate: &cert})
	if err != nil {
		t.Fatal(err)
	}
	return c.Call(context.Background(), "agent.register", nil, map[string]any{"hostname": "d", "os": "linux", "arch": "amd64",
		"version": "t", "mode": "daemon", "callback_url": callback})
}

// TestRegisterCallbackURLRules: agent.register refuses a callback_url the
// server could be aimed elsewhere with, fault 400 naming the fact and why.
func TestRegisterCallbackURLRules(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ url, why string }{
		{"http://127.0.0.1:7444/RPC2", "must be https"},
		{"ftp://127.0.0.1:7444/RPC2", "must be https"},
		{"https://user:pw@127.0.0.1:7444/RPC2", "user name or password"},
		{"https://user@127.0.0.1:7444/RPC2", "user name or password"},
		{"https://127.0.0.1/RPC2", "no port"},
		{"https://127.0.0.1:/RPC2", "no port"},
		{"https://127.0.0.1:0/RPC2", "1..65535"},
		{"https://127.0.0.1:70000/RPC2", "1..65535"},
		{"https://127.0.0.1:7444/RPC2?x=1", "query"},
		{"https://127.0.0.1:7444/RPC2?", "query"},
		{"https://127.0.0.1:7444/RPC2#frag", "fragment"},
		{"https://127.0.0.1:7444/", "path"},
		{"https://127.0.0.1:7444", "path"},
		{"https://127.0.0.1:7444/admin", "path"},
		{"https://127.0.0.1:7444/RPC2/../x", "path"},
		{"https://:7444/RPC2", "no host"},
		{"https:127.0.0.1:7444", "no host"},
		{"https://0.0.0.0:7444/RPC2", "not an address"},
		{"https://[::]:7444/RPC2", "not an address"},
		{"https://224.0.0.1:7444/RPC2", "not an address"},
		{"https://bad_host!:7444/RPC2", ""},
		{"not a url", "must be https"},
	} {
		err := h.registerDaemon(t, tc.url)
		if api.FaultCode(err) != 400 || !strings.Contains(err.Error(), "facts.callback_url") || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("register with %q: %v; want fault 400 naming facts.callback_url and %q", tc.url, err, tc.why)
		}
	}
	for _, ok := range []string{"https://127.0.0.1:7444/RPC2", "https://[::1]:7444/RPC2", "https://agent-7.example.com:7444/RPC2",
		"https://db1:7444/RPC2", "https://DB1.Example.COM.:1/RPC2"} {
		if err := h.registerDaemon(t, ok); err != nil {
			t.Errorf("register with %q: %v", ok, err)
		}
	}
}

// TestRegisterPushNetworks: with push_networks set, an IP callback outside
// them is refused at registration; a name is taken (checked at push time).
func TestRegisterPushNetworks(t *testing.T) {
	h := newHarnessConfig(t, func(c *Config) {
		c.PushNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	})
	for _, u := range []string{"https://192.168.1.5:7444/RPC2", "https://127.0.0.2:7444/RPC2", "https://[::1]:7444/RPC2"} {
		if err := h.registerDaemon(t, u); api.FaultCode(err) != 400 || !strings.Contains(err.Error(), "push_networks") {
			t.Errorf("register with %q: %v; want fault 400 naming push_networks", u, err)
		}
	}
	for _, u := range []string{"https://10.1.2.3:7444/RPC2", "https://127.0.0.1:7444/RPC2", "https://[::ffff:10.0.0.1]:7444/RPC2",
		"https://agent.example.com:7444/RPC2"} {
		if err := h.registerDaemon(t, u); err != nil {
			t.Errorf("register with %q: %v", u, err)
		}
	}
}

// TestLoadConfigPushNetworks: push_networks in server.yaml.
func TestLoadConfigPushNetworks(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "server.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := serverconfig.LoadConfigFile(write("push_networks: [10.0.0.0/8, 127.0.0.1, 'fd00::/8']\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("fd00::/8")}
	if len(c.PushNetworks) != len(want) {
		t.Fatalf("push_networks = %v", c.PushNetworks)
	}
	for i := range want {
		if c.PushNetworks[i] != want[i] {
			t.Fatalf("push_networks = %v, want %v", c.PushNetworks, want)
		}
	}
	for body, why := range map[string]string{
		"push_networks: [10.0.0.0/33]\n":          "not a network",
		"push_networks: [10.1.2.3/8]\n":           "did you mean 10.0.0.0/8",
		"push_networks:\n  - 10.0.0.0/8\n  - x\n": ":3: push_networks",
		"push_networks: 10.0.0.0/8\n":             "want a list",
	} {
		if _, err := serverconfig.LoadConfigFile(write(body)); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: %v; want an error with %q", body, err, why)
		}
	}
	// Off by default.
	if c, err := serverconfig.LoadConfigFile(write("listen: 127.0.0.1:7443\n")); err != nil || c.PushNetworks != nil {
		t.Fatalf("%v %v", c.PushNetworks, err)
	}
}
