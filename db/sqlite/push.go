package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// DueNotBefore returns the daemon-mode clients with a pending run whose
// not_before is in (after, until], and the earliest not_before after until
// among the pending runs of daemon-mode clients (zero when none). The
// server pushes those clients agent.pollNow when the time comes.
//
// Both queries read the pending runs through the runs_dispatch partial
// index (state = 'pending'): their cost grows with the backlog of pending
// runs, not with the history of the runs table.
func (s *Store) DueNotBefore(ctx context.Context, after, until time.Time) ([]int64, time.Time, error) {
	rows, err := s.readRows(ctx, `
		SELECT DISTINCT r.client_id
		FROM runs r JOIN clients c ON c.id = r.client_id
		WHERE r.state = 'pending' AND r.not_before > ? AND r.not_before <= ?
		  AND c.mode = 'daemon' AND c.status = 'active'
		ORDER BY r.client_id`, after.UnixNano(), until.UnixNano())
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("due not_before: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, time.Time{}, fmt.Errorf("due not_before: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, fmt.Errorf("due not_before: %w", err)
	}
	var next sql.NullInt64
	err = s.readRow(ctx, `
		SELECT MIN(r.not_before)
		FROM runs r JOIN clients c ON c.id = r.client_id
		WHERE r.state = 'pending' AND r.not_before > ?
		  AND c.mode = 'daemon' AND c.status = 'active'`, until.UnixNano()).Scan(&next)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("next not_before: %w", err)
	}
	return ids, tn(next), nil
}
