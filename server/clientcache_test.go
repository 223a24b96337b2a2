package server

import (
	"context"
	"testing"

	"github.com/scirectl/scirectl/db"
)

func TestClientCache(t *testing.T) {
	ctx := context.Background()
	var cc clientCache
	loads := 0
	status := db.ClientActive
	load := func(context.Context, string) (db.Client, error) {
		loads++
		return db.Client{ID: 7, Status: status}, nil
	}
	for i := 0; i < 3; i++ {
		if c, err := cc.get(ctx, "fp", load); err != nil || c.ID != 7 {
			t.Fatalf("get = %+v, %v", c, err)
		}
	}
	if loads != 1 {
		t.Fatalf("loads = %d, want 1: repeated lookups must come from the cache", loads)
	}
	// A change through this daemon resets the cache: the next call sees it.
	status = db.ClientRevoked
	cc.reset()
	if c, _ := cc.get(ctx, "fp", load); c.Status != db.ClientRevoked || loads != 2 {
		t.Fatalf("after reset: %+v, loads %d", c, loads)
	}
	// A lookup that straddles a reset is answered but not remembered: it
	// may have read the row before the change.
	cc.reset()
	straddle := func(ctx context.Context, fp string) (db.Client, error) {
		cc.reset()
		return load(ctx, fp)
	}
	cc.get(ctx, "fp", straddle)
	cc.get(ctx, "fp", load)
	if loads != 4 {
		t.Fatalf("loads = %d, want 4: a lookup begun before a reset must not be cached", loads)
	}
	// Unknown certificates are not cached (they register next).
	var misses int
	notFound := func(context.Context, string) (db.Client, error) { misses++; return db.Client{}, db.ErrNotFound }
	cc.get(ctx, "new", notFound)
	cc.get(ctx, "new", notFound)
	if misses != 2 {
		t.Fatalf("unknown fingerprint looked up %d times, want 2", misses)
	}
}
