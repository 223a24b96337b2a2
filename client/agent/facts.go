package agent

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client/facts"
)

// factsEvery is how often the machine's facts are collected again after
// the start (a variable for the tests). It also bounds how often the agent
// sends the same facts again to a server whose heartbeats keep saying it
// holds others.
var factsEvery = 5 * time.Minute

// machineFacts is the machine's facts as last collected, shared by the
// collector and the loop, and what the server holds as the heartbeats
// tell it (agent.heartbeat's facts_hash). Its fields below mu are the
// loop's and the collector's; the others belong to one of them, as said.
type machineFacts struct {
	// refused: the server refused agent.register's facts member (an older
	// server); none are sent, nor collected again, while the agent runs.
	refused atomic.Bool

	mu     sync.Mutex
	facts  facts.Facts // last collected
	hash   string      // facts.Hash()
	server string      // facts_hash of the last heartbeat answered since facts were last sent
	told   bool        // a heartbeat answered since facts were last sent

	problems map[string]bool // the collector's: the last collection's problems, to warn of each once
	sent     string          // the loop's: hash of the facts last sent
	resentAt time.Time       // the loop's: facts last sent because a heartbeat said the server holds others
	warned   bool            // the loop's: the server keeps holding others; said once
}

// current returns the facts last collected and their hash.
func (m *machineFacts) current() (facts.Facts, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.facts, m.hash
}

// heard takes in the facts_hash of a heartbeat answer.
func (m *machineFacts) heard(hash string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.server, m.told = hash, true
}

// factsSent records that agent.register carried the facts of hash: the
// server holds them now, until a heartbeat says otherwise.
func (a *agent) factsSent(hash string) {
	m := &a.facts
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent, m.server, m.told = hash, hash, false
}

// collectFacts collects the machine's facts and makes them the current
// ones. Each problem is logged at warn level with its source, once while it
// lasts: a collection that finds a problem the one before found too logs
// it at debug level. A collection cut short by the agent's stop changes
// nothing: the executables it killed gave no facts.
func (a *agent) collectFacts(ctx context.Context) {
	start := time.Now()
	f, problems := facts.Collect(ctx, facts.Options{StateDir: a.cfg.StateDir, Flags: a.cfg.Facts,
		AgentVersion: a.cfg.Version})
	if ctx.Err() != nil {
		return
	}
	m := &a.facts
	seen := make(map[string]bool, len(problems))
	for _, p := range problems {
		text := p.Error()
		level := slog.LevelWarn
		if m.problems[text] {
			level = slog.LevelDebug
		}
		seen[text] = true
		attrs := []any{"source", p.Source}
		if p.Line > 0 {
			attrs = append(attrs, "line", p.Line)
		}
		if p.Key != "" {
			attrs = append(attrs, "key", p.Key)
		}
		a.log.Log(ctx, level, "problem with the machine's facts", append(attrs, "err", p.Err)...)
	}
	m.problems = seen
	hash := f.Hash()
	m.mu.Lock()
	first, changed := m.facts == nil, m.hash != hash
	m.facts, m.hash = f, hash
	m.mu.Unlock()
	switch {
	case first:
		a.log.Debug("machine facts collected", "facts", len(f), "problems", len(problems), "hash", clipHash(hash),
			"took", time.Since(start).Round(time.Millisecond))
	case changed:
		a.log.Info("the machine's facts changed", "facts", len(f), "hash", clipHash(hash))
	}
}

// recollectFacts collects the facts again every factsEvery in a goroutine
// of its own, so that the facts.d executables, which may take up to their
// time limit, never hold up the loop: it only compares hashes (syncFacts).
// Collections stop when the server refuses facts. The returned function
// stops the goroutine, killing the executables it runs, and waits for it.
func (a *agent) recollectFacts(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(factsEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if a.facts.refused.Load() {
					return
				}
				a.collectFacts(ctx)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// syncFacts registers again, with the facts, when the server may hold
// other facts than the machine's current ones: they changed since they
// were last sent, or a heartbeat answered since says the server holds
// others (none, after it lost them; or another machine's state). That is
// the only time the facts travel; the check itself is a comparison of
// hashes. A server whose heartbeats keep naming other facts just after it
// was sent them gets them again at most every factsEvery, and a warning.
func (a *agent) syncFacts(ctx context.Context) error {
	if !a.active || a.facts.refused.Load() {
		return nil
	}
	m := &a.facts
	m.mu.Lock()
	hash, server, told, sent := m.hash, m.server, m.told, m.sent
	m.mu.Unlock()
	switch {
	case hash != sent:
		a.log.Info("sending the machine's changed facts to the server", "hash", clipHash(hash))
	case !told:
		return nil
	case server == hash:
		m.resentAt, m.warned = time.Time{}, false
		return nil
	case !m.resentAt.IsZero() && time.Since(m.resentAt) < factsEvery:
		if !m.warned {
			m.warned = true
			a.log.Warn("the server still holds other facts than the ones this agent sent it; sending them again at most every "+
				factsEvery.String(), "server_hash", clipHash(server), "hash", clipHash(hash))
		}
		return nil
	default:
		a.log.Info("the server holds other facts than this machine's; sending them", "server_hash", clipHash(server),
			"hash", clipHash(hash))
		m.resentAt = time.Now()
	}
	return a.register(ctx)
}

// clipHash shortens a hash for the log; "" (the server holds no facts, or
// none were collected) shows as "none".
func clipHash(h string) string {
	if h == "" {
		return "none"
	}
	return h[:min(len(h), 12)]
}

// refusesFacts says whether err is an older server's refusal of
// agent.register's facts member: fault 400 naming it as an unknown member
// (package xmlrpc's Struct.Unknown: `param 1 (facts): unknown member
// "facts" (allowed: …)`). Other faults naming "facts" are not: the
// register param itself is called facts in the server's messages
// (facts.name).
func refusesFacts(err error) bool {
	f, ok := api.AsFault(err)
	return ok && f.Code == faultInvalid && strings.Contains(f.Message, `unknown member "facts"`)
}
