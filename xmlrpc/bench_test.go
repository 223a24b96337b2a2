package xmlrpc

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	kolo "github.com/kolo/xmlrpc"
)

func BenchmarkDecodeCall(b *testing.B) { benchDecodeCall(b, DecodeCall) }

// BenchmarkDecodeCallReference is the encoding/xml decoder DecodeCall
// replaced, measured on the same calls for comparison.
func BenchmarkDecodeCallReference(b *testing.B) { benchDecodeCall(b, refDecodeCall) }

func benchDecodeCall(b *testing.B, decode func(io.Reader, Limits) (string, Params, error)) {
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = strconv.Itoa(1_000_000 + i)
	}
	for _, c := range []struct {
		name   string
		method string
		args   []any
	}{
		{"getJobs", "agent.getJobs", []any{10}},
		{"ackJobs100", "agent.ackJobs", []any{ids}},
	} {
		body, err := kolo.EncodeMethodCall(c.method, c.args...)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			r := bytes.NewReader(body)
			for b.Loop() {
				r.Reset(body)
				if _, _, err := decode(r, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// jobXML is about the size of a job document handed out by agent.getJobs.
const jobXML = `<job id="1234567" run="7654321" priority="5"><name>rotate logs</name>` +
	`<interpreter>/bin/sh</interpreter><timeout>600</timeout><script>find /var/log -name '*.gz' -mtime +30 -delete &amp;&amp; systemctl reload rsyslog</script>` +
	`<submitted by="admin" at="2024-05-06T07:08:09Z"/></job>`

type benchJob struct {
	ID          string            `xmlrpc:"id"`
	Name        string            `xmlrpc:"name"`
	Status      string            `xmlrpc:"status"`
	Priority    int               `xmlrpc:"priority"`
	SubmittedBy string            `xmlrpc:"submitted_by"`
	SubmittedAt time.Time         `xmlrpc:"submitted_at"`
	Targets     []string          `xmlrpc:"targets"`
	Env         map[string]string `xmlrpc:"env,omitempty"`
	Error       string            `xmlrpc:"error,omitempty"`
}

func BenchmarkEncodeResponse(b *testing.B) {
	docs := make([]string, 100)
	for i := range docs {
		docs[i] = jobXML
	}
	job := benchJob{
		ID: "1234567", Name: "rotate logs", Status: "running", Priority: 5, SubmittedBy: "admin",
		SubmittedAt: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), Targets: []string{"web1", "web2", "db1"},
		Env: map[string]string{"LANG": "C", "PATH": "/usr/bin:/bin"},
	}
	for _, c := range []struct {
		name string
		v    any
	}{
		{"strings100", docs},
		{"struct", job},
		{"map", map[string]any{"acknowledged": int64(100), "server_time": job.SubmittedAt, "poll_interval": 30}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var buf bytes.Buffer
			if err := EncodeResponse(&buf, c.v); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(buf.Len()))
			b.ReportAllocs()
			for b.Loop() {
				if err := EncodeResponse(io.Discard, c.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkServeHTTP measures the whole in-process path of one call (no
// network): decode, dispatch, encode into the buffer, write.
func BenchmarkServeHTTP(b *testing.B) {
	s := NewServer()
	docs := make([]string, 10)
	for i := range docs {
		docs[i] = jobXML
	}
	s.Register(Method{Name: "agent.getJobs", Handler: func(_ context.Context, p Params) (any, error) {
		if _, err := p.Int(0, "max"); err != nil {
			return nil, err
		}
		return docs, nil
	}})
	body, _ := kolo.EncodeMethodCall("agent.getJobs", 10)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/RPC2", strings.NewReader(string(body)))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
