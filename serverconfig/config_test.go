package serverconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSizeParse(t *testing.T) {
	for in, want := range map[string]Size{"1": 1, "65536": 65536, "512KiB": 512 << 10, "16MiB": 16 << 20, "16m": 16 << 20,
		"16 MB": 16 << 20, "1G": 1 << 30, "2gib": 2 << 30, "100b": 100} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1.5M", "16 TB", "MiB", "99999999999G"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
	for s, want := range map[Size]string{16 << 20: "16MiB", 1 << 30: "1GiB", 1536: "1536", 4096: "4KiB"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", int64(s), s.String(), want)
		}
	}
}

func TestWebhooksSection(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "server.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := LoadConfigFile(write("webhooks:\n  allow_http: true\n  timeout: 3s\n"))
	if err != nil || !c.Webhooks.AllowHTTP || time.Duration(c.Webhooks.Timeout) != 3*time.Second {
		t.Fatalf("webhooks: %+v, %v", c.Webhooks, err)
	}
	if c, err := LoadConfigFile(write("listen: 127.0.0.1:1\n")); err != nil || c.Webhooks.AllowHTTP || c.Webhooks.Timeout != 0 {
		t.Fatalf("no webhooks section: %+v, %v", c.Webhooks, err)
	}
	for body, want := range map[string]string{
		"webhooks:\n  timeout: 2m\n":       "webhooks: timeout: 2m0s is longer than 1m0s",
		"webhooks:\n  allow_http: maybe\n": "server.yaml:2:",
		"webhooks:\n  retries: 3\n":        "field retries not found",
	} {
		if _, err := LoadConfigFile(write(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", body, err, want)
		}
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	load := func(body string) (FileConfig, error) {
		p := filepath.Join(dir, "server.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return LoadConfigFile(p)
	}
	c, err := load("retain: 30d\nretain_audit: off\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Retain == nil || time.Duration(*c.Retain) != 30*24*time.Hour || c.RetainAudit == nil || *c.RetainAudit != 0 {
		t.Fatalf("retain %v, retain_audit %v", c.Retain, c.RetainAudit)
	}
	for _, body := range []string{"retain: never\n", "retain: 0\n", "retain: \"off\"\n", "retain: 0d\n"} {
		if c, err := load(body); err != nil || c.Retain == nil || *c.Retain != 0 {
			t.Errorf("%q: %v, %v; want off", body, c.Retain, err)
		}
	}
	if c, err := load("listen: 127.0.0.1:7443\n"); err != nil || c.Retain != nil || c.RetainAudit != nil {
		t.Fatalf("unset: %v, %v, %v", c.Retain, c.RetainAudit, err)
	}
	for _, body := range []string{"retain: 90\n", "retain: soon\n", "retain_audit: -1d\n", "retain: true\n"} {
		if _, err := load(body); err == nil || !strings.Contains(err.Error(), "server.yaml:1:") {
			t.Errorf("%q: err = %v, want one naming the file and line", body, err)
		}
	}
	var r Retention
	if err := r.Set("1d12h"); err != nil || r.String() != "1d12h" || r.Type() != "duration" {
		t.Fatalf("Set(1d12h): %v, %s", err, r.String())
	}
	if err := r.Set("never"); err != nil || r.String() != "off" {
		t.Fatalf("Set(never): %v, %s", err, r.String())
	}
}
