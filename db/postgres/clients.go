package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// RegisterClient creates a pending client for a new fingerprint, or updates
// the facts of a known one without touching its status: registering again
// never promotes a client. One upsert, so two daemons registering the same
// agent at once make one client.
func (s *Store) RegisterClient(ctx context.Context, r db.ClientRegistration) (db.Client, error) {
	r, err := dbcore.CheckRegistration(r)
	if err != nil {
		return db.Client{}, err
	}
	at := r.At.UnixNano()
	c, err := dbcore.ScanClient(s.pool.QueryRow(ctx, `
		INSERT INTO clients (fingerprint, name, hostname, os, arch, version, mode, callback_url, registered_at, last_seen)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
		ON CONFLICT (fingerprint) DO UPDATE SET
			hostname = excluded.hostname, os = excluded.os, arch = excluded.arch,
			version = excluded.version, mode = excluded.mode, callback_url = excluded.callback_url,
			last_seen = excluded.last_seen,
			name = CASE WHEN clients.status = 'active' THEN clients.name ELSE excluded.name END
		RETURNING `+dbcore.ClientCols,
		r.Fingerprint, r.Name, r.Hostname, r.OS, r.Arch, r.Version, r.Mode, r.CallbackURL, at))
	if err != nil {
		return db.Client{}, fmt.Errorf("register client %s: %w", r.Fingerprint, classify(err))
	}
	return c, nil
}

// TouchClients records when clients were last heard from, in one
// statement. Two daemons writing overlapping sets at once may deadlock;
// PostgreSQL then fails one of them, and the server keeps its times for
// its next write (server/lastseen.go).
func (s *Store) TouchClients(ctx context.Context, seen map[int64]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	ids, ats := make([]int64, 0, len(seen)), make([]int64, 0, len(seen))
	for id, at := range seen {
		ids, ats = append(ids, id), append(ats, at.UnixNano())
	}
	_, err := s.pool.Exec(ctx, `UPDATE clients c SET last_seen = v.at
		FROM unnest($1::bigint[], $2::bigint[]) AS v(id, at)
		WHERE c.id = v.id AND c.last_seen < v.at`, ids, ats)
	if err != nil {
		return fmt.Errorf("touch %d clients: %w", len(seen), err)
	}
	return nil
}
