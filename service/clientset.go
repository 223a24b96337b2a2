package service

// Choosing machines: the clients a glob, a selector or a dynamic group
// picks (job.submit, client.list, group.get). The service keeps what a
// choice reads of every client — id, name, status, labels, facts: its
// traits (db.Store.ListClientTraits) — in memory, parsed once, and reuses
// them for as long as the store's clients version (ClientsVersion) stays
// the one they were read at: each choice reads the version first, one
// indexed row, so a change made by any daemon is seen by the next choice
// here. What is handed out of a choice is then read again from the store,
// by id, as it is now.

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/scirectl/scirectl/db"
)

// clientSet is every client's traits, by id, as the store held them at
// version. It is never changed once made (its maps neither: some are
// shared among clients), and is shared by the choices that run at once.
type clientSet struct {
	version int64
	clients []db.ClientTraits
}

// clientCache is the service's current clientSet. The zero value is
// empty and ready.
type clientCache struct {
	set  atomic.Pointer[clientSet]
	once sync.Once
	load chan struct{} // holds a token while one call loads a set
}

// lock waits until no other call loads a set, or ctx is done.
func (c *clientCache) lock(ctx context.Context) error {
	c.once.Do(func() { c.load = make(chan struct{}, 1) })
	select {
	case c.load <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *clientCache) unlock() { <-c.load }

// pick says whether a choice takes a client, by its traits.
type pick func(name string, status db.ClientStatus, labels, facts map[string]string) bool

// clientSet returns the clients as the store holds them now: the set
// loaded before while the clients' version is the one it was loaded at,
// else a new one.
func (s *Service) clientSet(ctx context.Context) (*clientSet, error) {
	v, err := s.Store.ClientsVersion(ctx)
	if err != nil {
		return nil, err
	}
	if set := s.clients.set.Load(); set != nil && v >= 0 && set.version == v {
		return set, nil
	}
	return s.loadClientSet(ctx)
}

// loadClientSet loads a new set, one call at a time: those that come
// meanwhile wait, and take the set it loaded if the version has not moved
// again.
func (s *Service) loadClientSet(ctx context.Context) (*clientSet, error) {
	if err := s.clients.lock(ctx); err != nil {
		return nil, err
	}
	defer s.clients.unlock()
	v, err := s.Store.ClientsVersion(ctx)
	if err != nil {
		return nil, err
	}
	if set := s.clients.set.Load(); set != nil && v >= 0 && set.version == v {
		return set, nil
	}
	// The old set goes as soon as the choices that hold it are done,
	// not after the load: two sets at once only while those run.
	s.clients.set.Store(nil)
	v, cs, err := s.Store.ListClientTraits(ctx) // the rows with their own version
	if err != nil {
		return nil, err
	}
	set := &clientSet{version: v, clients: cs}
	if v >= 0 { // a store without a version: each choice reads the clients
		s.clients.set.Store(set)
	}
	return set, nil
}

// choose returns the clients of the current set p picks, by id; among
// those of ids only, when ids is not nil.
func (s *Service) choose(ctx context.Context, p pick, ids []int64) ([]db.ClientTraits, error) {
	set, err := s.clientSet(ctx)
	if err != nil {
		return nil, err
	}
	return set.choose(p, ids), nil
}

// choose returns the clients p picks, by id; among those of ids only,
// when ids is not nil.
func (set *clientSet) choose(p pick, ids []int64) []db.ClientTraits {
	var only map[int64]bool
	if ids != nil {
		only = make(map[int64]bool, len(ids))
		for _, id := range ids {
			only[id] = true
		}
	}
	var out []db.ClientTraits
	for i := range set.clients {
		m := &set.clients[i]
		if (only == nil || only[m.ID]) && p(m.Name, m.Status, m.Labels, m.Facts) {
			out = append(out, *m)
		}
	}
	return out
}

// current reads the clients of ms (of set, by id) from the store
// as they are now, and keeps those p still picks: one changed or deleted
// since the set's version was read is left out rather than handed out as
// it was. A large part of the set is read with every client, in one
// statement, rather than by id.
func (s *Service) current(ctx context.Context, set *clientSet, ms []db.ClientTraits, p pick) ([]db.Client, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	var f db.ClientFilter
	if len(ms)*4 < len(set.clients) {
		f.IDs = make([]int64, len(ms))
		for i, m := range ms {
			f.IDs[i] = m.ID
		}
	}
	cs, err := s.Store.ListClients(ctx, f)
	if err != nil {
		return nil, err
	}
	out := cs[:0]
	i := 0 // both by id: keep those of ms
	for _, c := range cs {
		for i < len(ms) && ms[i].ID < c.ID {
			i++
		}
		if i < len(ms) && ms[i].ID == c.ID && p(c.Name, c.Status, c.Labels, c.Facts) {
			out = append(out, c)
		}
	}
	return out, nil
}

// chooseClients is choose, and then current: the clients p picks now.
func (s *Service) chooseClients(ctx context.Context, p pick, ids []int64) ([]db.Client, error) {
	set, err := s.clientSet(ctx)
	if err != nil {
		return nil, err
	}
	return s.current(ctx, set, set.choose(p, ids), p)
}

// active picks the active clients p picks.
func active(p pick) pick {
	return func(name string, status db.ClientStatus, labels, facts map[string]string) bool {
		return status == db.ClientActive && p(name, status, labels, facts)
	}
}
