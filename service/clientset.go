package service

// Choosing machines: the clients a glob, a selector or a dynamic group
// picks (job.submit, client.list, group.get). The service keeps what a
// choice reads of every client — id, name, status, labels, facts — in
// memory, parsed once, and reuses it for as long as the store's clients
// version (db.Store.ClientsVersion) stays the one it was loaded at: each
// choice reads the version first, one indexed row, so a change made by
// any daemon is seen by the next choice here. What is handed out of a
// choice is then read again from the store, by id, as it is now.

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/scirectl/scirectl/db"
)

// member is what a choice reads of one client.
type member struct {
	id     int64
	name   string
	status db.ClientStatus
	// labels and facts are shared with other members and other
	// goroutines: never written once the set is made.
	labels, facts map[string]string
}

// clientSet is every client, by id, as the store held them at version
// (read before them). It is never changed once made, and is shared by the
// choices that run at once.
type clientSet struct {
	version int64
	members []member
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

// pick says whether a choice takes a client, by what a member holds.
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
	set := newClientSet(v, cs)
	if v >= 0 { // a store without a version: each choice reads the clients
		s.clients.set.Store(set)
	}
	return set, nil
}

// newClientSet makes the set of clients cs, read at version v. Strings
// that repeat (keys, common values, statuses) are kept once, and so are
// equal label sets: a fleet's labels take a few combinations.
func newClientSet(v int64, cs []db.ClientTraits) *clientSet {
	in := interner{strs: map[string]string{}, maps: map[string]map[string]string{}}
	set := &clientSet{version: v, members: make([]member, len(cs))}
	for i := range cs {
		c := &cs[i]
		set.members[i] = member{id: c.ID, name: c.Name, status: db.ClientStatus(in.str(string(c.Status))),
			labels: in.shared(c.Labels), facts: in.copy(c.Facts)}
	}
	return set
}

// interner keeps one copy of equal strings and of equal maps.
type interner struct {
	strs map[string]string
	maps map[string]map[string]string
	key  []byte
}

// str is s, the one copy of it: a copy of its own, since s may be a part
// of a longer string (a client's facts as stored) that would stay.
func (in *interner) str(s string) string {
	if t, ok := in.strs[s]; ok {
		return t
	}
	t := strings.Clone(s)
	in.strs[t] = t
	return t
}

// copy is m with its keys and values interned.
func (in *interner) copy(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[in.str(k)] = in.str(v)
	}
	return out
}

// shared is a map equal to m, the same one for every equal m.
func (in *interner) shared(m map[string]string) map[string]string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	in.key = in.key[:0]
	for _, k := range keys { // each string after its length: no two maps alike
		for _, t := range []string{k, m[k]} {
			in.key = strconv.AppendInt(in.key, int64(len(t)), 10)
			in.key = append(in.key, ':')
			in.key = append(in.key, t...)
		}
	}
	if got, ok := in.maps[string(in.key)]; ok {
		return got
	}
	out := in.copy(m)
	in.maps[string(in.key)] = out
	return out
}

// choose returns the members of the current set p picks, by id; among
// those of ids only, when ids is not nil.
func (s *Service) choose(ctx context.Context, p pick, ids []int64) ([]member, error) {
	set, err := s.clientSet(ctx)
	if err != nil {
		return nil, err
	}
	return set.choose(p, ids), nil
}

// choose returns the members p picks, by id; among those of ids only,
// when ids is not nil.
func (set *clientSet) choose(p pick, ids []int64) []member {
	var only map[int64]bool
	if ids != nil {
		only = make(map[int64]bool, len(ids))
		for _, id := range ids {
			only[id] = true
		}
	}
	var out []member
	for i := range set.members {
		m := &set.members[i]
		if (only == nil || only[m.id]) && p(m.name, m.status, m.labels, m.facts) {
			out = append(out, *m)
		}
	}
	return out
}

// current reads the clients of ms (members of set, by id) from the store
// as they are now, and keeps those p still picks: one changed or deleted
// since the set's version was read is left out rather than handed out as
// it was. A large part of the set is read with every client, in one
// statement, rather than by id.
func (s *Service) current(ctx context.Context, set *clientSet, ms []member, p pick) ([]db.Client, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	var f db.ClientFilter
	if len(ms)*4 < len(set.members) {
		f.IDs = make([]int64, len(ms))
		for i, m := range ms {
			f.IDs[i] = m.id
		}
	}
	cs, err := s.Store.ListClients(ctx, f)
	if err != nil {
		return nil, err
	}
	out := cs[:0]
	i := 0 // both by id: keep those of ms
	for _, c := range cs {
		for i < len(ms) && ms[i].id < c.ID {
			i++
		}
		if i < len(ms) && ms[i].id == c.ID && p(c.Name, c.Status, c.Labels, c.Facts) {
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
