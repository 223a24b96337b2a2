package server

import (
	"context"
	"slices"
	"testing"

	"github.com/scirectl/scirectl/db"
)

func TestStartupPushLifecycle(t *testing.T) {
	st := newStubStore()
	checkLifecycle(t, newStartupPush(st, idlePusher(t), discardLog()), st, "ListClients", nil)
}

func TestStartupPushRunOnce(t *testing.T) {
	st := newStubStore()
	st.clients = []db.Client{{ID: 1, Mode: db.ModeDaemon}, {ID: 2, Mode: db.ModePoll}, {ID: 3, Mode: db.ModeDaemon}}
	p := idlePusher(t)
	n, err := newStartupPush(st, p, discardLog()).RunOnce(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("RunOnce = %d, %v; want 2", n, err)
	}
	if q := p.Queued(); !slices.Equal(q, []int64{1, 3}) {
		t.Fatalf("queued %v, want the daemon-mode clients", q)
	}
}
