package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// Aggregate counts for the server's /metrics (docs/metrics.md). Both read
// through the read pool, so a scrape never waits for the writer.

// RunCounts returns the number of runs in each state; states without a run
// are absent from the map. One aggregate query: a scan of the runs table's
// rows, not of their output (SQLite stops reading a row at its last needed
// column, and state comes before output).
func (s *Store) RunCounts(ctx context.Context) (map[runstate.State]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT state, count(*) FROM runs GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("run counts: %w", err)
	}
	defer rows.Close()
	out := map[runstate.State]int{}
	for rows.Next() {
		var st runstate.State
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("run counts: %w", err)
		}
		out[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("run counts: %w", err)
	}
	return out, nil
}

// ClientCounts returns the number of clients in each status (statuses
// without a client are absent), and how many active clients were seen
// (registered, polled or sent a heartbeat) at or after seenSince.
func (s *Store) ClientCounts(ctx context.Context, seenSince time.Time) (map[db.ClientStatus]int, int, error) {
	rows, err := s.r.QueryContext(ctx, `
		SELECT status, count(*), coalesce(sum(status = 'active' AND last_seen >= ?), 0)
		FROM clients GROUP BY status`, seenSince.UnixNano())
	if err != nil {
		return nil, 0, fmt.Errorf("client counts: %w", err)
	}
	defer rows.Close()
	out := map[db.ClientStatus]int{}
	seen := 0
	for rows.Next() {
		var st db.ClientStatus
		var n, recent int
		if err := rows.Scan(&st, &n, &recent); err != nil {
			return nil, 0, fmt.Errorf("client counts: %w", err)
		}
		out[st] = n
		seen += recent
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("client counts: %w", err)
	}
	return out, seen, nil
}
