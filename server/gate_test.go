package server

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/serverconfig"
	"github.com/scirectl/scirectl/xmlrpc"
)

// blockingOp is a modifier that runs until its context ends, reporting
// when it starts and how it ended.
func blockingOp(started chan<- struct{}, ended chan<- error) Operation {
	return Operation{Name: "test.block", Class: gate.Modifier, caller: byOperator,
		handler: func(ctx context.Context, _ xmlrpc.Params) (any, error) {
			started <- struct{}{}
			<-ctx.Done()
			ended <- context.Cause(ctx)
			return nil, ctx.Err()
		}}
}

func TestGateThroughTheServer(t *testing.T) {
	started, ended := make(chan struct{}, 1), make(chan error, 1)
	h := newHarness(t, blockingOp(started, ended))
	admin := h.operator(t)
	ctx := context.Background()

	// A client that goes away mid-operation frees the gate.
	cctx, drop := context.WithCancel(ctx)
	go admin.Call(cctx, "test.block", nil)
	<-started
	noWait, err := client.New(client.Options{Servers: []string{h.url}, RootCAs: h.pool(t).RootCAs, Token: mustToken(t, h), NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	err = noWait.Call(ctx, "job.list", nil)
	var f *api.Fault
	if !errors.As(err, &f) || f.Code != 423 || !strings.Contains(f.Message, "test.block") || !strings.Contains(f.Message, "admin") {
		t.Fatalf("no-wait call during a modifier: %v; want fault 423 naming test.block and admin", err)
	}
	drop()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the operation did not see its client go away")
	}
	// The slot is released as the handler returns: soon the gate is free.
	for deadline := time.Now().Add(5 * time.Second); len(h.opsNow(t)) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gate still held after the client left: %+v", h.opsNow(t))
		}
	}
	mustCall(t, noWait, "job.list", nil)

	// ops.list shows a running modifier and a waiting reader; ops.cancel
	// stops the modifier, and the reader then runs.
	go admin.Call(ctx, "test.block", nil)
	<-started
	readerDone := make(chan error, 1)
	go func() { readerDone <- admin.Call(ctx, "job.list", nil) }()
	var ops []api.Op
	deadline := time.Now().Add(5 * time.Second)
	for {
		ops = h.opsNow(t)
		if len(ops) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(ops) != 2 || ops[0].Name != "test.block" || ops[0].State != "running" || ops[0].Class != "modifier" ||
		ops[1].Name != "job.list" || ops[1].State != "waiting" || ops[1].User != "admin" {
		t.Fatalf("ops.list = %+v", ops)
	}
	var cancelled api.Op
	mustCall(t, admin, "ops.cancel", &cancelled, ops[0].ID)
	if err := <-ended; !errors.Is(err, gate.ErrCancelled) {
		t.Fatalf("cancelled operation ended with %v", err)
	}
	if err := <-readerDone; err != nil {
		t.Fatalf("the waiting reader: %v", err)
	}
	wantFault(t, admin.Call(ctx, "ops.cancel", nil, ops[0].ID), 404)
}

// opsNow lists the gate's operations without passing the gate itself.
func (h *harness) opsNow(t *testing.T) []api.Op {
	var out []api.Op
	for _, o := range h.srv.gate.List() {
		out = append(out, apiOp(o))
	}
	return out
}

func mustToken(t *testing.T, h *harness) string {
	tok, err := readToken(h.paths)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestClassOverrides(t *testing.T) {
	h := newHarnessConfig(t, func(c *Config) {
		c.Classes = map[string]gate.Class{"job.submit": gate.NonModifier, "job.list": gate.Modifier}
	})
	var cs []api.OpClass
	mustCall(t, h.operator(t), "ops.classes", &cs)
	got := map[string]api.OpClass{}
	for _, c := range cs {
		got[c.Name] = c
	}
	if c := got["job.submit"]; c.Class != "non-modifier" || c.DefaultClass != "modifier" {
		t.Errorf("job.submit = %+v", c)
	}
	if c := got["job.list"]; c.Class != "modifier" || c.DefaultClass != "non-modifier" {
		t.Errorf("job.list = %+v", c)
	}
	if c := got["acl.add"]; c.Class != "modifier" || c.Permission != PermACLWrite {
		t.Errorf("acl.add = %+v", c)
	}
	if c := got["agent.getJobs"]; c.Class != "non-modifier" {
		t.Errorf("agent.getJobs = %+v", c)
	}
	if len(cs) != len(OperationNames()) {
		t.Errorf("ops.classes has %d rows, OperationNames %d", len(cs), len(OperationNames()))
	}

	_, err := New(context.Background(), Config{DataDir: filepath.Join(t.TempDir(), "d"), Log: slog.New(slog.DiscardHandler),
		Classes: map[string]gate.Class{"job.sumbit": gate.Modifier}})
	if err == nil || !strings.Contains(err.Error(), "job.sumbit") {
		t.Fatalf("unknown operation in classes: %v", err)
	}
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "server.yaml")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := serverconfig.LoadConfigFile(write("listen: 0.0.0.0:9443\npoll_interval: 5s\ngate:\n  max_wait: 1m\n  classes:\n    job.submit: non-modifier\n"))
	if err != nil || c.Listen != "0.0.0.0:9443" || time.Duration(c.PollInterval) != 5*time.Second ||
		time.Duration(c.Gate.MaxWait) != time.Minute || c.Classes()["job.submit"] != gate.NonModifier {
		t.Fatalf("config = %+v, %v", c, err)
	}
	if _, err := serverconfig.LoadConfigFile(write("")); err != nil {
		t.Fatalf("empty file: %v", err)
	}
	for body, want := range map[string]string{
		"listen: a\nlisten_port: 3\n":                    ":2: field listen_port not found",
		"poll_interval: soon\n":                          ":1: ",
		"gate:\n  classes:\n    job.submit: sometimes\n": ":3: ",
		"log_format: xml\n":                              "log_format",
		"listen: [\n":                                    "server.yaml:",
	} {
		_, err := serverconfig.LoadConfigFile(write(body))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "server.yaml") {
			t.Errorf("config %q: err = %v, want it to name the file and %q", body, err, want)
		}
	}
}
