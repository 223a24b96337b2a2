package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// RegisterClient creates a pending client for a new fingerprint, or updates
// the facts of a known one without touching its status: registering again
// never promotes a client. One upsert, so two daemons registering the same
// agent at once make one client.
func (s *Store) RegisterClient(ctx context.Context, r db.ClientRegistration) (db.Client, error) {
	if r.Fingerprint == "" {
		return db.Client{}, fmt.Errorf("register client: empty fingerprint: %w", db.ErrInvalid)
	}
	if err := db.CheckNewName("client", r.Name); err != nil {
		return db.Client{}, fmt.Errorf("register client %s: %w", r.Fingerprint, err)
	}
	if r.Mode == "" {
		r.Mode = db.ModePoll
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

// Client returns a client by id.
func (s *Store) Client(ctx context.Context, id int64) (db.Client, error) {
	c, err := dbcore.ScanClient(s.pool.QueryRow(ctx, `SELECT `+dbcore.ClientCols+` FROM clients WHERE id = $1`, id))
	if noRows(err) {
		return c, dbcore.NotFound("client", id)
	} else if err != nil {
		return c, fmt.Errorf("client %d: %w", id, err)
	}
	return c, nil
}

// ClientByFingerprint returns the client holding a certificate fingerprint.
func (s *Store) ClientByFingerprint(ctx context.Context, fp string) (db.Client, error) {
	c, err := dbcore.ScanClient(s.pool.QueryRow(ctx, `SELECT `+dbcore.ClientCols+` FROM clients WHERE fingerprint = $1`, fp))
	if noRows(err) {
		return c, dbcore.NotFound("client with fingerprint", fp)
	} else if err != nil {
		return c, fmt.Errorf("client with fingerprint %s: %w", fp, classify(err))
	}
	return c, nil
}

// ListClients lists clients by id.
func (s *Store) ListClients(ctx context.Context, f db.ClientFilter) ([]db.Client, error) {
	var out []db.Client
	a := newArgs()
	err := eachRow(ctx, s.pool, dbcore.ClientsQuery(f, a), a.List, func(rows pgx.Rows) error {
		c, err := dbcore.ScanClient(rows)
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", classify(err))
	}
	return out, nil
}

// SetClientStatus moves a client along its enrollment lifecycle; a move not
// allowed from its current status is ErrConflict, and accepting a client
// under a name another active client holds is ErrConflict too (checked
// here for the message, and by the partial unique index for two daemons
// accepting two namesakes at once).
func (s *Store) SetClientStatus(ctx context.Context, id int64, to db.ClientStatus) (db.Client, error) {
	from := db.ClientStatusFrom(to)
	if len(from) == 0 {
		return db.Client{}, fmt.Errorf("set client %d status %q: %w", id, to, db.ErrInvalid)
	}
	var c db.Client
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		c, err = dbcore.ScanClient(tx.QueryRow(ctx, `SELECT `+dbcore.ClientCols+` FROM clients WHERE id = $1 FOR UPDATE`, id))
		if noRows(err) {
			return dbcore.NotFound("client", id)
		} else if err != nil {
			return err
		}
		if c.Status == to {
			return nil // repeating an accept is not an error
		}
		ok := false
		for _, f := range from {
			ok = ok || c.Status == f
		}
		if !ok {
			return fmt.Errorf("client %d is %s, cannot become %s: %w", id, c.Status, to, db.ErrConflict)
		}
		nameInUse := func(other int64) error {
			return fmt.Errorf("client name %q is in use by active client %d (revoke or delete it first): %w", c.Name, other, db.ErrConflict)
		}
		if to == db.ClientActive {
			var other int64
			err := tx.QueryRow(ctx, `SELECT id FROM clients WHERE name = $1 AND status = 'active'`, c.Name).Scan(&other)
			if err == nil {
				return nameInUse(other)
			} else if !noRows(err) {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE clients SET status = $1 WHERE id = $2`, to, id); err != nil {
			if isUnique(err) {
				return fmt.Errorf("client name %q is in use by another active client (revoke or delete it first): %w", c.Name, db.ErrConflict)
			}
			return err
		}
		c.Status = to
		return nil
	})
	if err != nil {
		return db.Client{}, fmt.Errorf("set client status: %w", classify(err))
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

// DeleteClient removes a client that is not active, with its runs and group
// memberships (foreign keys cascade) and the ACL rules that name it, in the
// same transaction; it returns those rules as they were. Ids are never
// reused, so no later client could match them, but a rule naming a client
// that is gone would only mislead. The client's row and all its
// runs are locked first, so no daemon can send one of them meanwhile.
func (s *Store) DeleteClient(ctx context.Context, id int64) ([]db.ACLRule, error) {
	var removed []db.ACLRule
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var status db.ClientStatus
		err := tx.QueryRow(ctx, `SELECT status FROM clients WHERE id = $1 FOR UPDATE`, id).Scan(&status)
		if noRows(err) {
			return dbcore.NotFound("client", id)
		} else if err != nil {
			return err
		}
		if status == db.ClientActive {
			return fmt.Errorf("client %d is active: revoke it first: %w", id, db.ErrConflict)
		}
		var inflight []string
		err = eachRow(ctx, tx, `SELECT id, state FROM runs WHERE client_id = $1 ORDER BY id FOR UPDATE`, []any{id}, func(rows pgx.Rows) error {
			var rid int64
			var st string
			if err := rows.Scan(&rid, &st); err != nil {
				return err
			}
			if st == "sent" || st == "received" || st == "running" {
				inflight = append(inflight, strconv.FormatInt(rid, 10))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(inflight) > 0 {
			if len(inflight) > 10 {
				inflight = append(inflight[:10], "…")
			}
			return fmt.Errorf("client %d has runs in flight (%s): cancel them or let them finish first: %w",
				id, strings.Join(inflight, ", "), db.ErrConflict)
		}
		if removed, err = removeRules(ctx, tx, `target_kind = 'client' AND target_id = $1`, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM clients WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete client: %w", classify(err))
	}
	return removed, nil
}
