package client

import (
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"testing"
	"time"
)

// A call given a longer timeout with WithTimeout outlasts the client's
// own, over the same kept-alive connection; without it the client's
// timeout cuts the call short.
func TestWithTimeout(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(300 * time.Millisecond)
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<?xml version="1.0"?><methodResponse><params><param><value><int>7</int></value></param></params></methodResponse>`)
	}))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	c, err := New(Options{Servers: []string{srv.URL}, RootCAs: roots, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := c.Call(context.Background(), "slow", &n); err == nil {
		t.Fatal("a 300 ms call within a 100 ms client timeout succeeded")
	}
	var conns []bool
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		conns = append(conns, i.Reused)
	}})
	for i := 0; i < 2; i++ {
		n = 0
		if err := c.Call(WithTimeout(ctx, 2*time.Second), "slow", &n); err != nil || n != 7 {
			t.Fatalf("call %d with a 2 s timeout: %d, %v", i+1, n, err)
		}
	}
	if len(conns) != 2 || !conns[1] {
		t.Errorf("connections (reused?) %v: the second call should reuse the first's", conns)
	}
}
