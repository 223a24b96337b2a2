package server

import (
	"context"
	"sync"
	"time"

	"github.com/scirectl/scirectl/db"
)

// clientCache remembers for a moment which client a certificate
// fingerprint belongs to. Every agent call is authenticated by its
// certificate, and reading the clients table for each call cost a tenth
// of the server's CPU with agents asking for one job at a time
// (docs/benchmarks.md).
//
// Freshness: an operation of this daemon that may change clients (any
// modifier, and agent.register) empties the cache when it returns, so
// accept, reject, revoke and delete act at once here; a change made through
// another daemon sharing the database acts here within the TTL
// (clientCacheTTL). A daemon that shares its database with no other (the
// SQLite store) sees every change made through the API itself, and keeps
// entries for clientCacheAloneTTL, longer than an idle agent's poll
// interval, so that a fleet polling every 30 s is served from the cache.
type clientCache struct {
	ttl time.Duration // zero: clientCacheTTL
	mu  sync.Mutex
	m   map[string]cachedClient
	gen uint64 // bumped by every reset: a lookup begun before a reset is not stored
}

type cachedClient struct {
	c  db.Client
	at time.Time
}

// clientCacheTTL bounds how long a change made through another daemon goes
// unseen; clientCacheAloneTTL, for a daemon with a database of its own, how
// long a change made behind the server's back (an offline tool) does.
const (
	clientCacheTTL      = 2 * time.Second
	clientCacheAloneTTL = 2 * time.Minute
)

// clientCacheMax bounds the memory: past it the cache starts afresh.
const clientCacheMax = 100_000

// get returns the client of fingerprint fp, from the cache or from load.
func (cc *clientCache) get(ctx context.Context, fp string, load func(context.Context, string) (db.Client, error)) (db.Client, error) {
	now := time.Now()
	cc.mu.Lock()
	e, ok := cc.m[fp]
	gen := cc.gen
	cc.mu.Unlock()
	ttl := cc.ttl
	if ttl == 0 {
		ttl = clientCacheTTL
	}
	if ok && now.Sub(e.at) < ttl {
		return e.c, nil
	}
	c, err := load(ctx, fp)
	if err != nil {
		return c, err // unknown certificates are not cached: they register next
	}
	cc.mu.Lock()
	if cc.gen == gen {
		if cc.m == nil || len(cc.m) >= clientCacheMax {
			cc.m = make(map[string]cachedClient)
		}
		cc.m[fp] = cachedClient{c: c, at: now}
	}
	cc.mu.Unlock()
	return c, nil
}

// reset forgets everything, and any lookup still in progress.
func (cc *clientCache) reset() {
	cc.mu.Lock()
	cc.m = nil
	cc.gen++
	cc.mu.Unlock()
}
