package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db"
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
		return notFound("server", id)
	}
	return nil
}

// ListServers lists registered daemons, newest first.
func (s *Store) ListServers(ctx context.Context) ([]db.ServerInfo, error) {
	var out []db.ServerInfo
	err := eachRow(ctx, s.pool, `SELECT id, address, hostname, version, started_at, heartbeat_at FROM servers ORDER BY id DESC`, nil,
		func(rows pgx.Rows) error {
			var si db.ServerInfo
			var st, hb int64
			err := rows.Scan(&si.ID, &si.Address, &si.Hostname, &si.Version, &st, &hb)
			si.StartedAt, si.HeartbeatAt = ti(st), ti(hb)
			out = append(out, si)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	return out, nil
}

// RecordOperation appends to the audit trail. The audit trail records
// what was asked, valid or not: a NUL or invalid UTF-8 is stored as U+FFFD
// rather than refused.
func (s *Store) RecordOperation(ctx context.Context, op db.Operation) error {
	if err := recordOperation(ctx, s.pool, op); err != nil {
		return classify(err)
	}
	return nil
}

func recordOperation(ctx context.Context, q queryer, op db.Operation) error {
	_, err := q.Exec(ctx, `INSERT INTO operations (at, server_id, actor, name, target, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		op.At.UnixNano(), op.ServerID, text(op.Actor), text(op.Name), text(op.Target), text(op.Outcome), text(op.Detail))
	if err != nil {
		return fmt.Errorf("record operation %s: %w", op.Name, err)
	}
	return nil
}

// ListOperations lists the audit trail, newest first. A Name ending in "*"
// is a prefix, compared bytewise with starts_with (never LIKE, whose % and _
// would widen the match).
func (s *Store) ListOperations(ctx context.Context, f db.OperationFilter) ([]db.Operation, error) {
	q := `SELECT id, at, COALESCE(server_id, 0), actor, name, target, outcome, detail FROM operations WHERE true`
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Actor != "" {
		q += ` AND actor = ` + arg(f.Actor)
	}
	if prefix, ok := strings.CutSuffix(f.Name, "*"); ok {
		if prefix != "" {
			q += ` AND starts_with(name, ` + arg(prefix) + `)`
		}
	} else if f.Name != "" {
		q += ` AND name = ` + arg(f.Name)
	}
	if !f.Since.IsZero() {
		q += ` AND at >= ` + arg(f.Since.UnixNano())
	}
	switch f.Outcome {
	case "":
	case "ok":
		q += ` AND outcome = 'ok'`
	case "error":
		q += ` AND outcome <> 'ok'`
	default:
		q += ` AND outcome = ` + arg(f.Outcome)
	}
	if f.BeforeID > 0 {
		q += ` AND id < ` + arg(f.BeforeID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += ` ORDER BY id DESC LIMIT ` + arg(limit)
	var out []db.Operation
	err := eachRow(ctx, s.pool, q, args, func(rows pgx.Rows) error {
		var op db.Operation
		var at int64
		err := rows.Scan(&op.ID, &at, &op.ServerID, &op.Actor, &op.Name, &op.Target, &op.Outcome, &op.Detail)
		op.At = ti(at)
		out = append(out, op)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list operations: %w", classify(err))
	}
	return out, nil
}
