package postgres

import (
	"context"

	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// EventsLockKey is the advisory lock key under which events are numbered:
// "scievent" (see GateLockKey).
const EventsLockKey int64 = 0x7363_6965_7665_6e74

// numberEvents gives the committed events without a seq one, in id order,
// following the highest given (events_seq), in one transaction under the
// advisory lock: two numberings never interleave, so seq values become
// visible in increasing order and a reader that has seen seq N has seen
// every event numbered before it. An event whose transaction has not
// committed is not visible here and is numbered by a later call, after
// those that are. The check first costs one probe of a partial index
// that holds only the events not yet numbered.
func numberEvents(ctx context.Context, w dbcore.DB) error {
	if ok, err := dbcore.Exists(ctx, w.Reader(), `SELECT 1 FROM events WHERE seq IS NULL LIMIT 1`); err != nil || !ok {
		return err
	}
	return w.Write(ctx, func(q dbcore.Querier) error {
		if _, err := q.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, EventsLockKey); err != nil {
			return err
		}
		for {
			var base int64
			if err := q.QueryRow(ctx, `SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM events_seq`).Scan(&base); err != nil {
				return err
			}
			n, err := q.Exec(ctx, `WITH todo AS (
					SELECT id, sum(span) OVER (ORDER BY id) AS rn FROM events WHERE seq IS NULL ORDER BY id LIMIT 10000),
				numbered AS (UPDATE events e SET seq = $1 + todo.rn FROM todo WHERE e.id = todo.id RETURNING e.seq)
				SELECT setval('events_seq', max(seq)) FROM numbered HAVING count(*) > 0`, base)
			if err != nil || n < 1 {
				return err
			}
		}
	})
}
