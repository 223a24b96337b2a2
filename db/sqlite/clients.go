package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// RegisterClient creates a pending client for a new fingerprint, or updates
// the facts of a known one without touching its status: registering again
// never promotes a client.
func (s *Store) RegisterClient(ctx context.Context, r db.ClientRegistration) (db.Client, error) {
	r, err := dbcore.CheckRegistration(r)
	if err != nil {
		return db.Client{}, err
	}
	at := r.At.UnixNano()
	var c db.Client
	err = s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO clients (fingerprint, name, hostname, os, arch, version, mode, callback_url, registered_at, last_seen)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (fingerprint) DO UPDATE SET
				hostname = excluded.hostname, os = excluded.os, arch = excluded.arch,
				version = excluded.version, mode = excluded.mode, callback_url = excluded.callback_url,
				last_seen = excluded.last_seen,
				name = CASE WHEN clients.status = 'active' THEN clients.name ELSE excluded.name END`,
			r.Fingerprint, r.Name, r.Hostname, r.OS, r.Arch, r.Version, r.Mode, r.CallbackURL, at, at)
		if err != nil {
			return err
		}
		c, err = dbcore.ScanClient(tx.QueryRowContext(ctx, `SELECT `+dbcore.ClientCols+` FROM clients WHERE fingerprint = ?`, r.Fingerprint))
		return err
	})
	if err != nil {
		return db.Client{}, fmt.Errorf("register client %s: %w", r.Fingerprint, err)
	}
	return c, nil
}

// touchClientsSQL takes a JSON array of [id, unix nanoseconds] pairs.
var touchClientsSQL = writeStatement(`UPDATE clients SET last_seen = j.at
	FROM (SELECT value->>0 AS id, value->>1 AS at FROM json_each(?1)) AS j
	WHERE clients.id = j.id AND clients.last_seen < j.at`)

// TouchClients records when clients were last heard from.
func (s *Store) TouchClients(ctx context.Context, seen map[int64]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	b := make([]byte, 0, 2+len(seen)*32)
	b = append(b, '[')
	for id, at := range seen {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, id, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, at.UnixNano(), 10)
		b = append(b, ']')
	}
	b = append(b, ']')
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.txExec(ctx, tx, touchClientsSQL, string(b))
		return err
	})
	if err != nil {
		return fmt.Errorf("touch %d clients: %w", len(seen), err)
	}
	return nil
}

// isUnique reports a UNIQUE constraint failure.
func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
