package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// RegisterServer adds a daemon to the registry and returns it with its id.
func (s *Store) RegisterServer(ctx context.Context, si db.ServerInfo) (db.ServerInfo, error) {
	err := s.pool.QueryRow(ctx, `INSERT INTO servers (address, hostname, version, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4) RETURNING id`,
		si.Address, si.Hostname, si.Version, si.StartedAt.UnixNano()).Scan(&si.ID)
	if err != nil {
		return si, fmt.Errorf("register server %s: %w", si.Address, classify(err))
	}
	si.HeartbeatAt = si.StartedAt
	return si, nil
}

// HeartbeatServer records that a daemon is alive.
func (s *Store) HeartbeatServer(ctx context.Context, id int64, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE servers SET heartbeat_at = $1 WHERE id = $2`, at.UnixNano(), id)
	if err != nil {
		return fmt.Errorf("heartbeat server %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return dbcore.NotFound("server", id)
	}
	return nil
}

// RecordOperation appends to the audit trail. The audit trail records
// what was asked, valid or not: a NUL or invalid UTF-8 is stored as U+FFFD
// rather than refused.
func (s *Store) RecordOperation(ctx context.Context, op db.AuditEntry) error {
	if err := recordOperation(ctx, s.pool, op); err != nil {
		return classify(err)
	}
	return nil
}

func recordOperation(ctx context.Context, q queryer, op db.AuditEntry) error {
	_, err := q.Exec(ctx, `INSERT INTO operations (at, server_id, actor, name, target, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		op.At.UnixNano(), op.ServerID, text(op.Actor), text(op.Name), text(op.Target), text(op.Outcome), text(op.Detail))
	if err != nil {
		return fmt.Errorf("record operation %s: %w", op.Name, err)
	}
	return nil
}
