package server

import (
	"crypto/tls"
	"testing"

	"github.com/scirectl/scirectl/push"
)

// The pusher as a service: Stop waits for a push in flight (here, its
// client lookup), Stop without Start does nothing, and pushes asked for
// before Start are sent once it runs.
func TestPusherLifecycle(t *testing.T) {
	st := newStubStore()
	p := push.New(discardLog(), tls.Certificate{}, st.Client, func() int64 { return 1 }, push.Options{Workers: 2})
	checkLifecycle(t, p, st, "Client", func() { p.Push(1) })
	// Stopped: pushes are dropped, not queued for a pusher that is gone.
	p.Push(2)
	if q := p.Queued(); len(q) != 0 {
		t.Fatalf("a stopped pusher queued %v", q)
	}
}
