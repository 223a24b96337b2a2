package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/scirectl/scirectl/db"
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
		return notFound("server", id)
	}
	return nil
}

// ListServers lists registered daemons, newest first.
func (s *Store) ListServers(ctx context.Context) ([]db.ServerInfo, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, address, hostname, version, started_at, heartbeat_at FROM servers ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	defer rows.Close()
	var out []db.ServerInfo
	for rows.Next() {
		var si db.ServerInfo
		var st, hb int64
		if err := rows.Scan(&si.ID, &si.Address, &si.Hostname, &si.Version, &st, &hb); err != nil {
			return nil, fmt.Errorf("list servers: %w", err)
		}
		si.StartedAt, si.HeartbeatAt = ti(st), ti(hb)
		out = append(out, si)
	}
	return out, rows.Err()
}

var recordOperationSQL = writeStatement(`INSERT INTO operations (at, server_id, actor, name, target, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)`)

// RecordOperation appends to the audit trail.
func (s *Store) RecordOperation(ctx context.Context, op db.Operation) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.txExec(ctx, tx, recordOperationSQL, op.At.UnixNano(), op.ServerID, op.Actor, op.Name, op.Target, op.Outcome, op.Detail)
		return err
	})
	if err != nil {
		return fmt.Errorf("record operation %s: %w", op.Name, err)
	}
	return nil
}

// ListOperations lists the audit trail, newest first. A Name ending in "*"
// is a prefix, compared bytewise with substr (never LIKE, whose % and _ and
// ASCII case folding would widen the match).
func (s *Store) ListOperations(ctx context.Context, f db.OperationFilter) ([]db.Operation, error) {
	q := `SELECT id, at, COALESCE(server_id, 0), actor, name, target, outcome, detail FROM operations WHERE 1=1`
	var args []any
	if f.Actor != "" {
		q += ` AND actor = ?`
		args = append(args, f.Actor)
	}
	if prefix, ok := strings.CutSuffix(f.Name, "*"); ok {
		if prefix != "" {
			// name starts with prefix: compare the first len(prefix) bytes.
			q += ` AND substr(CAST(name AS BLOB), 1, ?) = CAST(? AS BLOB)`
			args = append(args, len(prefix), prefix)
		}
	} else if f.Name != "" {
		q += ` AND name = ?`
		args = append(args, f.Name)
	}
	if !f.Since.IsZero() {
		q += ` AND at >= ?`
		args = append(args, f.Since.UnixNano())
	}
	switch f.Outcome {
	case "":
	case "ok":
		q += ` AND outcome = 'ok'`
	case "error":
		q += ` AND outcome <> 'ok'`
	default:
		q += ` AND outcome = ?`
		args = append(args, f.Outcome)
	}
	if f.BeforeID > 0 {
		q += ` AND id < ?`
		args = append(args, f.BeforeID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list operations: %w", err)
	}
	defer rows.Close()
	var out []db.Operation
	for rows.Next() {
		var op db.Operation
		var at int64
		if err := rows.Scan(&op.ID, &at, &op.ServerID, &op.Actor, &op.Name, &op.Target, &op.Outcome, &op.Detail); err != nil {
			return nil, fmt.Errorf("list operations: %w", err)
		}
		op.At = ti(at)
		out = append(out, op)
	}
	return out, rows.Err()
}
