package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// RegisterServer adds a daemon to the registry and returns it with its id.
func (s *Store) RegisterServer(ctx context.Context, si db.ServerInfo) (db.ServerInfo, error) {
	res, err := s.w.ExecContext(ctx, `INSERT INTO servers (address, hostname, version, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)`,
		si.Address, si.Hostname, si.Version, si.StartedAt.UnixNano(), si.StartedAt.UnixNano())
	if err != nil {
		return si, fmt.Errorf("register server %s: %w", si.Address, err)
	}
	si.ID, err = res.LastInsertId()
	si.HeartbeatAt = si.StartedAt
	return si, err
}

// HeartbeatServer records that a daemon is alive.
func (s *Store) HeartbeatServer(ctx context.Context, id int64, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE servers SET heartbeat_at = ? WHERE id = ?`, at.UnixNano(), id)
	if err != nil {
		return fmt.Errorf("heartbeat server %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return dbcore.NotFound("server", id)
	}
	return nil
}

var recordOperationSQL = writeStatement(`INSERT INTO operations (at, server_id, actor, name, target, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)`)

// RecordOperation appends to the audit trail.
func (s *Store) RecordOperation(ctx context.Context, op db.AuditEntry) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.txExec(ctx, tx, recordOperationSQL, op.At.UnixNano(), op.ServerID, op.Actor, op.Name, op.Target, op.Outcome, op.Detail)
		return err
	})
	if err != nil {
		return fmt.Errorf("record operation %s: %w", op.Name, err)
	}
	return nil
}
