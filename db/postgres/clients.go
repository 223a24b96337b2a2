package postgres

import (
	"context"
	"fmt"
	"time"
)

// TouchClients records when clients were last heard from, in one
// statement. Two daemons writing overlapping sets at once may deadlock;
// PostgreSQL then fails one of them, and the server keeps its times for
// its next write (server/lastseen.go).
func (s *Store) TouchClients(ctx context.Context, seen map[int64]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	ids, ats := make([]int64, 0, len(seen)), make([]int64, 0, len(seen))
	for id, at := range seen {
		ids, ats = append(ids, id), append(ats, at.UnixNano())
	}
	_, err := s.pool.Exec(ctx, `UPDATE clients c SET last_seen = v.at
		FROM unnest($1::bigint[], $2::bigint[]) AS v(id, at)
		WHERE c.id = v.id AND c.last_seen < v.at`, ids, ats)
	if err != nil {
		return fmt.Errorf("touch %d clients: %w", len(seen), err)
	}
	return nil
}
