package commands

import (
	"bytes"
	"encoding/pem"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/scirectl/scirectl/xmlrpc"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fakeServer answers XML-RPC calls with canned replies, so command output
// can be compared with golden files: fixed ids, names and times.
type fakeServer struct {
	mu      sync.Mutex
	replies map[string]func(params xmlrpc.Params) any // a *xmlrpc.Fault answers with a fault
	calls   []string
}

// startFake serves replies over TLS on loopback and returns the flags that
// reach it.
func startFake(t *testing.T, replies map[string]func(xmlrpc.Params) any) (*fakeServer, []string) {
	t.Helper()
	f := &fakeServer{replies: replies}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, params, err := xmlrpc.DecodeCall(r.Body, xmlrpc.Limits{})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.calls = append(f.calls, method)
		reply, ok := f.replies[method]
		f.mu.Unlock()
		var buf bytes.Buffer
		if !ok {
			xmlrpc.EncodeFault(&buf, &xmlrpc.Fault{Code: 404, Message: "no method " + method})
		} else if v := reply(params); v != nil {
			if fault, ok := v.(*xmlrpc.Fault); ok {
				xmlrpc.EncodeFault(&buf, fault)
			} else if err := xmlrpc.EncodeResponse(&buf, v); err != nil {
				t.Errorf("encode %s reply: %v", method, err)
			}
		}
		w.Header().Set("Content-Type", "text/xml")
		w.Write(buf.Bytes())
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return f, []string{"--server", srv.URL, "--ca", ca, "--token", "test-token", "--data-dir", t.TempDir()}
}

// fixed returns a reply that is always v.
func fixed(v any) func(xmlrpc.Params) any { return func(xmlrpc.Params) any { return v } }

// fixClock makes tables measure "ago" from a fixed time.
func fixClock(t *testing.T, now time.Time) {
	t.Helper()
	old := clock
	clock = func() time.Time { return now }
	t.Cleanup(func() { clock = old })
}

// golden compares got with testdata/name.golden; -update rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./commands -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (go test ./commands -run %s -update rewrites it)\n--- got:\n%s\n--- want:\n%s", name, path, t.Name(), got, want)
	}
}
