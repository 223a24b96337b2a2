package dbcore

// Clients: registration, enrollment and deletion (the agent protocol is
// dispatch.go's).

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/scirectl/scirectl/db"
)

// RegisterClient creates a pending client for a new fingerprint, or updates
// the facts of a known one without touching its status: registering again
// never promotes a client. One upsert, so two daemons registering the same
// agent at once make one client (read back with RETURNING where the
// dialect has it, else in the same transaction).
func (s Store) RegisterClient(ctx context.Context, r db.ClientRegistration) (db.Client, error) {
	if r.Fingerprint == "" {
		return db.Client{}, fmt.Errorf("register client: empty fingerprint: %w", db.ErrInvalid)
	}
	if err := db.CheckNewName("client", r.Name); err != nil {
		return db.Client{}, fmt.Errorf("register client %s: %w", r.Fingerprint, err)
	}
	if r.Mode == "" {
		r.Mode = db.ModePoll
	}
	d := s.db.Dialect()
	// Facts not sent (nil) keep the stored ones: ?11 says whether they were.
	upsert := `
		INSERT INTO clients (fingerprint, name, hostname, os, arch, version, mode, callback_url, registered_at, last_seen, facts, facts_hash)
		VALUES (` + placeholders(d, 9) + `, ` + d.P(9) + `, ` + d.P(10) + `, ` + d.P(12) + `)
		ON CONFLICT (fingerprint) DO UPDATE SET
			hostname = excluded.hostname, os = excluded.os, arch = excluded.arch,
			version = excluded.version, mode = excluded.mode, callback_url = excluded.callback_url,
			last_seen = excluded.last_seen,
			facts = CASE WHEN ` + d.P(11) + ` THEN excluded.facts ELSE clients.facts END,
			facts_hash = CASE WHEN ` + d.P(11) + ` THEN excluded.facts_hash ELSE clients.facts_hash END,
			name = CASE WHEN clients.status = 'active' THEN clients.name ELSE excluded.name END`
	args := []any{r.Fingerprint, r.Name, r.Hostname, r.OS, r.Arch, r.Version, r.Mode, r.CallbackURL, r.At.UnixNano(),
		StringMapColumn(r.Facts), r.Facts != nil, r.FactsHash}
	var c db.Client
	var err error
	if d.Returning {
		c, err = ScanClient(s.db.Writer().QueryRow(ctx, upsert+` RETURNING `+ClientCols, args...))
	} else {
		err = s.db.Write(ctx, func(q Querier) error {
			if _, err := q.Exec(ctx, upsert, args...); err != nil {
				return err
			}
			c, err = ScanClient(q.QueryRow(ctx, `SELECT `+ClientCols+` FROM clients WHERE fingerprint = `+d.P(1), r.Fingerprint))
			return err
		})
	}
	if err != nil {
		return db.Client{}, fmt.Errorf("register client %s: %w", r.Fingerprint, d.Classify(err))
	}
	return c, nil
}

// SetClientStatus moves a client along its enrollment states
// (db.ClientStatusFrom); repeating the current status is not an error.
// Accepting a client under a name another active client holds is
// ErrConflict too (checked here for the message, and by a partial unique
// index for two daemons accepting two namesakes at once).
func (s Store) SetClientStatus(ctx context.Context, id int64, to db.ClientStatus) (db.Client, error) {
	from := db.ClientStatusFrom(to)
	if len(from) == 0 {
		return db.Client{}, fmt.Errorf("set client %d status %q: %w", id, to, db.ErrInvalid)
	}
	d := s.db.Dialect()
	var c db.Client
	err := s.db.Write(ctx, func(q Querier) error {
		var err error
		c, err = ScanClient(q.QueryRow(ctx, `SELECT `+ClientCols+` FROM clients WHERE id = `+d.P(1)+d.ForUpdate, id))
		if NoRows(err) {
			return NotFound("client", id)
		} else if err != nil {
			return err
		}
		if c.Status == to {
			return nil // repeating an accept is not an error
		}
		if !slices.Contains(from, c.Status) {
			return fmt.Errorf("client %d is %s, cannot become %s: %w", id, c.Status, to, db.ErrConflict)
		}
		if to == db.ClientActive {
			var other int64
			err := q.QueryRow(ctx, `SELECT id FROM clients WHERE name = `+d.P(1)+` AND status = 'active'`, c.Name).Scan(&other)
			if err == nil {
				return fmt.Errorf("client name %q is in use by active client %d (revoke or delete it first): %w", c.Name, other, db.ErrConflict)
			} else if !NoRows(err) {
				return err
			}
		}
		if _, err := q.Exec(ctx, `UPDATE clients SET status = `+d.P(1)+` WHERE id = `+d.P(2), to, id); err != nil {
			if d.IsUnique(err) {
				return fmt.Errorf("client name %q is in use by another active client (revoke or delete it first): %w", c.Name, db.ErrConflict)
			}
			return err
		}
		c.Status = to
		return nil
	})
	if err != nil {
		return db.Client{}, fmt.Errorf("set client status: %w", d.Classify(err))
	}
	return c, nil
}

// DeleteClient removes a client that is not active, with its runs and group
// memberships (foreign keys cascade) and the ACL rules that name it, in the
// same transaction; it returns those rules as they were. Ids are never
// reused, so no later client could match them, but a rule naming a client
// that is gone would only mislead. The client's row is locked first, and
// its runs by Dialect.ClientRunsSQL, so no daemon can send one meanwhile.
func (s Store) DeleteClient(ctx context.Context, id int64) ([]db.ACLRule, error) {
	d := s.db.Dialect()
	var removed []db.ACLRule
	err := s.db.Write(ctx, func(q Querier) error {
		var status db.ClientStatus
		err := q.QueryRow(ctx, `SELECT status FROM clients WHERE id = `+d.P(1)+d.ForUpdate, id).Scan(&status)
		if NoRows(err) {
			return NotFound("client", id)
		} else if err != nil {
			return err
		}
		if status == db.ClientActive {
			return fmt.Errorf("client %d is active: revoke it first: %w", id, db.ErrConflict)
		}
		var inflight []string
		err = q.Each(ctx, d.ClientRunsSQL, []any{id}, func(row Scanner) error {
			var rid int64
			var st string
			if err := row.Scan(&rid, &st); err != nil {
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
		if removed, err = RemoveRules(ctx, q, d, `target_kind = 'client' AND target_id = `+d.P(1), id); err != nil {
			return err
		}
		_, err = q.Exec(ctx, `DELETE FROM clients WHERE id = `+d.P(1), id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete client: %w", d.Classify(err))
	}
	return removed, nil
}

// SetClientLabels sets and removes labels of clients in one transaction.
func (s Store) SetClientLabels(ctx context.Context, ids []int64, set map[string]string, remove []string) ([]db.Client, error) {
	d := s.db.Dialect()
	out := make([]db.Client, 0, len(ids))
	err := s.db.Write(ctx, func(q Querier) error {
		out = out[:0]
		// Every row locked, in one order, before the first change: the
		// first change takes the clients' version row (schema version 8)
		// to the end of the transaction, and a transaction holding it must
		// not wait for a client's row that another holds while it waits
		// for the version row.
		if d.ForUpdate != "" && len(ids) > 1 {
			a := NewArgs(d)
			if _, err := IDs(ctx, q, `SELECT id FROM clients WHERE `+d.IDIn(a, "id", ids)+` ORDER BY id`+d.ForUpdate, a.List...); err != nil {
				return err
			}
		}
		for _, id := range ids {
			c, err := ScanClient(q.QueryRow(ctx, `SELECT `+ClientCols+` FROM clients WHERE id = `+d.P(1)+d.ForUpdate, id))
			if NoRows(err) {
				return NotFound("client", id)
			} else if err != nil {
				return err
			}
			for k, v := range set {
				c.Labels[k] = v
			}
			for _, k := range remove {
				delete(c.Labels, k)
			}
			if _, err := q.Exec(ctx, `UPDATE clients SET labels = `+d.P(1)+` WHERE id = `+d.P(2), StringMapColumn(c.Labels), id); err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("label clients: %w", d.Classify(err))
	}
	return out, nil
}
