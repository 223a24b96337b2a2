package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// DueNotBefore returns the active daemon-mode clients with a pending run
// whose not_before is in (after, until], and the earliest not_before after
// until among the pending runs of such clients (zero when none). The
// daemon that leads the not_before push (server push.go) asks it; the
// others of the cluster do not, so one push goes out per arrival.
//
// Both queries read the pending runs through the runs_dispatch partial
// index (state = 'pending'): their cost grows with the backlog, not with
// the history of the runs table.
func (s *Store) DueNotBefore(ctx context.Context, after, until time.Time) ([]int64, time.Time, error) {
	var ids []int64
	err := eachRow(ctx, s.pool, `
		SELECT DISTINCT r.client_id
		FROM runs r JOIN clients c ON c.id = r.client_id
		WHERE r.state = 'pending' AND r.not_before > $1 AND r.not_before <= $2
		  AND c.mode = 'daemon' AND c.status = 'active'
		ORDER BY r.client_id`, []any{after.UnixNano(), until.UnixNano()}, func(rows pgx.Rows) error {
		var id int64
		err := rows.Scan(&id)
		ids = append(ids, id)
		return err
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("due not_before: %w", err)
	}
	var next *int64
	err = s.pool.QueryRow(ctx, `
		SELECT min(r.not_before)
		FROM runs r JOIN clients c ON c.id = r.client_id
		WHERE r.state = 'pending' AND r.not_before > $1
		  AND c.mode = 'daemon' AND c.status = 'active'`, until.UnixNano()).Scan(&next)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("next not_before: %w", err)
	}
	return ids, dbcore.NullTime(next), nil
}
