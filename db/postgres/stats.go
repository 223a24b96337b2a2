package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// Aggregate counts for the server's /metrics (db.Store's RunCounts and
// ClientCounts).

// RunCounts returns the number of runs in each state; states without a run
// are absent from the map.
func (s *Store) RunCounts(ctx context.Context) (map[runstate.State]int, error) {
	out := map[runstate.State]int{}
	err := eachRow(ctx, s.pool, `SELECT state, count(*) FROM runs GROUP BY state`, nil, func(rows pgx.Rows) error {
		var st runstate.State
		var n int
		err := rows.Scan(&st, &n)
		out[st] = n
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("run counts: %w", err)
	}
	return out, nil
}

// ClientCounts returns the number of clients in each status (statuses
// without a client are absent), and how many active clients were seen
// (registered, polled or sent a heartbeat) at or after seenSince.
func (s *Store) ClientCounts(ctx context.Context, seenSince time.Time) (map[db.ClientStatus]int, int, error) {
	out := map[db.ClientStatus]int{}
	seen := 0
	err := eachRow(ctx, s.pool, `SELECT status, count(*), count(*) FILTER (WHERE status = 'active' AND last_seen >= $1)
		FROM clients GROUP BY status`, []any{seenSince.UnixNano()}, func(rows pgx.Rows) error {
		var st db.ClientStatus
		var n, recent int
		err := rows.Scan(&st, &n, &recent)
		out[st] = n
		seen += recent
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("client counts: %w", err)
	}
	return out, seen, nil
}
