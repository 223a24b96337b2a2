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

// ListServers lists registered daemons, newest first.
func (s *Store) ListServers(ctx context.Context) ([]db.ServerInfo, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+dbcore.ServerCols+` FROM servers ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	defer rows.Close()
	var out []db.ServerInfo
	for rows.Next() {
		si, err := dbcore.ScanServer(rows)
		if err != nil {
			return nil, fmt.Errorf("list servers: %w", err)
		}
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

// ListOperations lists the audit trail, newest first (dbcore.OperationsQuery;
// a name prefix is compared bytewise with substr).
func (s *Store) ListOperations(ctx context.Context, f db.OperationFilter) ([]db.Operation, error) {
	a := newArgs()
	q := dbcore.OperationsQuery(f, a, func(a *dbcore.Args, prefix string) string {
		// The first len(prefix) bytes of the name.
		return `substr(CAST(name AS BLOB), 1, ` + a.Bind(len(prefix)) + `) = CAST(` + a.Bind(prefix) + ` AS BLOB)`
	})
	rows, err := s.r.QueryContext(ctx, q, a.List...)
	if err != nil {
		return nil, fmt.Errorf("list operations: %w", err)
	}
	defer rows.Close()
	var out []db.Operation
	for rows.Next() {
		op, err := dbcore.ScanOperation(rows)
		if err != nil {
			return nil, fmt.Errorf("list operations: %w", err)
		}
		out = append(out, op)
	}
	return out, rows.Err()
}
