package dbcore

// Idempotency keys (db.NewJob.IdempotencyKey): the first job a user
// submitted with a key, for db.IdempotencyWindow. The primary key of
// idempotency_keys (submitted_by, key) makes a live key one job whatever
// the races; the read first is what lets a duplicate return that job
// rather than fail.

import (
	"context"
	"errors"
	"fmt"

	"github.com/scirectl/scirectl/db"
)

// ErrKeyRace is the error of a job whose idempotency key another
// transaction took since this one read it (PostgreSQL: its insert waited
// for the other's commit). Its transaction is rolled back; run again, it
// finds the key and returns the other's job.
var ErrKeyRace = errors.New("idempotency key taken by a concurrent submit")

// KeyedJob returns the job a live idempotency key of the job's submitter
// names, 0 when none (or the job has no key), in q's transaction.
func KeyedJob(ctx context.Context, q Querier, d *Dialect, nj db.NewJob) (int64, error) {
	if nj.IdempotencyKey == "" {
		return 0, nil
	}
	var id int64
	err := q.QueryRow(ctx, `SELECT job_id FROM idempotency_keys WHERE submitted_by = `+d.P(1)+` AND key = `+d.P(2)+` AND created_at >= `+d.P(3),
		nj.SubmittedBy, nj.IdempotencyKey, nj.CreatedAt.Add(-db.IdempotencyWindow).UnixNano()).Scan(&id)
	if NoRows(err) {
		return 0, nil
	}
	return id, err
}

// RecordKey records the job's idempotency key for job id, taking over a
// key older than the window; ErrKeyRace when a live one holds it.
func RecordKey(ctx context.Context, q Querier, d *Dialect, nj db.NewJob, id int64) error {
	if nj.IdempotencyKey == "" {
		return nil
	}
	n, err := q.Exec(ctx, `INSERT INTO idempotency_keys (submitted_by, key, job_id, created_at) VALUES (`+placeholders(d, 4)+`)
		ON CONFLICT (submitted_by, key) DO UPDATE SET job_id = excluded.job_id, created_at = excluded.created_at
		WHERE idempotency_keys.created_at < `+d.P(5),
		nj.SubmittedBy, nj.IdempotencyKey, id, nj.CreatedAt.UnixNano(), nj.CreatedAt.Add(-db.IdempotencyWindow).UnixNano())
	if err != nil {
		return fmt.Errorf("idempotency key: %w", err)
	}
	if n == 0 {
		return ErrKeyRace
	}
	return nil
}
