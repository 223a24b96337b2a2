package dbcore

// The change counters of the change_versions table (schema version 8):
// triggers move the clients' one on in the transaction of every change to
// a client's name, status, labels or facts, and a reset or a restore moves
// every counter past the values it had.

import (
	"context"
	"fmt"
	"slices"

	"github.com/scirectl/scirectl/db"
)

// ClientsVersionName is the change_versions row of the clients.
const ClientsVersionName = "clients"

// clientsVersionSQL reads the clients' version: -1 when the row is
// missing, which no cache may take for a version.
const clientsVersionSQL = `SELECT COALESCE(MAX(version), -1) FROM change_versions WHERE name = 'clients'`

// ClientsVersion reads the clients' version (db.Store.ClientsVersion).
func (s Store) ClientsVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.db.Reader().QueryRow(ctx, clientsVersionSQL).Scan(&v); err != nil {
		return 0, fmt.Errorf("clients version: %w", s.db.Dialect().Classify(err))
	}
	return v, nil
}

// ListClientTraits reads the clients version, then the clients' traits,
// in one read transaction (db.Store.ListClientTraits).
func (s Store) ListClientTraits(ctx context.Context) (int64, []db.ClientTraits, error) {
	var v int64
	var out []db.ClientTraits
	err := s.db.Read(ctx, func(q Querier) error {
		out = out[:0]
		if err := q.QueryRow(ctx, clientsVersionSQL).Scan(&v); err != nil {
			return err
		}
		return q.Each(ctx, `SELECT id, name, status, labels, facts FROM clients ORDER BY id`, nil, func(row Scanner) error {
			var c db.ClientTraits
			var labels, facts string
			err := row.Scan(&c.ID, &c.Name, &c.Status, &labels, &facts)
			c.Labels, c.Facts = StringMap(labels), StringMap(facts)
			out = append(out, c)
			return err
		})
	})
	if err != nil {
		return 0, nil, fmt.Errorf("list client traits: %w", s.db.Dialect().Classify(err))
	}
	return v, out, nil
}

// TakeVersions starts a reset or a restore, in its transaction: it reads
// every change counter and deletes them all, for AdvanceVersions to put
// back further on. It must run when no other transaction can change the
// clients any more (PostgreSQL: once clients is truncated, whose lock
// waits for those that did to end; SQLite: its one writer), and so the
// counters with them.
func TakeVersions(ctx context.Context, q Querier) (map[string]int64, error) {
	vs, err := readVersions(ctx, q)
	if err != nil {
		return nil, err
	}
	if _, err := q.Exec(ctx, `DELETE FROM change_versions`); err != nil {
		return nil, fmt.Errorf("change versions: %w", err)
	}
	return vs, nil
}

// readVersions reads every change counter, by name.
func readVersions(ctx context.Context, q Querier) (map[string]int64, error) {
	out := map[string]int64{}
	err := q.Each(ctx, `SELECT name, version FROM change_versions`, nil, func(row Scanner) error {
		var n string
		var v int64
		err := row.Scan(&n, &v)
		out[n] = v
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("change versions: %w", err)
	}
	return out, nil
}

// AdvanceVersions ends a reset or a restore, in its transaction: every
// change counter (the clients' at least) is set past both the value it had
// before (before, from TakeVersions) and the one the transaction left (a
// restored row, or none), so that no daemon takes what it cached before
// for current. The triggers that fired while the tables were emptied and
// filled count for nothing.
func AdvanceVersions(ctx context.Context, q Querier, d *Dialect, before map[string]int64) error {
	after, err := readVersions(ctx, q)
	if err != nil {
		return err
	}
	names := []string{ClientsVersionName}
	for _, m := range []map[string]int64{before, after} {
		for n := range m {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	if _, err := q.Exec(ctx, `DELETE FROM change_versions`); err != nil {
		return fmt.Errorf("change versions: %w", err)
	}
	for _, n := range names {
		v := max(before[n], after[n], 0) + 1
		if _, err := q.Exec(ctx, `INSERT INTO change_versions (name, version) VALUES (`+d.P(1)+`, `+d.P(2)+`)`, n, v); err != nil {
			return fmt.Errorf("change versions: %w", err)
		}
	}
	return nil
}
