package dbcore

// The change counters of the change_versions table (schema version 8):
// triggers move the clients' one on in the transaction of every change to
// a client's name, status, labels or facts, and a reset or a restore moves
// every counter past the values it had.

import (
	"context"
	"fmt"
	"slices"
	"strings"

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
// in one read transaction (db.Store.ListClientTraits). Strings that repeat
// are kept once, and equal label sets are one map: a fleet's labels take a
// few combinations, its facts a few values each.
func (s Store) ListClientTraits(ctx context.Context) (int64, []db.ClientTraits, error) {
	var v int64
	var out []db.ClientTraits
	err := s.db.Read(ctx, func(q Querier) error {
		out = out[:0]
		in := newTraitReader()
		if err := q.QueryRow(ctx, clientsVersionSQL).Scan(&v); err != nil {
			return err
		}
		return q.Each(ctx, `SELECT id, name, status, labels, facts FROM clients ORDER BY id`, nil, func(row Scanner) error {
			var c db.ClientTraits
			var status, labels, facts string
			err := row.Scan(&c.ID, &c.Name, &status, &labels, &facts)
			c.Status, c.Labels, c.Facts = db.ClientStatus(in.str(status)), in.labels(labels), in.stringMap(facts)
			out = append(out, c)
			return err
		})
	})
	if err != nil {
		return 0, nil, fmt.Errorf("list client traits: %w", s.db.Dialect().Classify(err))
	}
	return v, out, nil
}

// traitReader reads the clients' traits, keeping one copy of equal
// strings and of equal label sets.
type traitReader struct {
	strs   map[string]string
	labelm map[string]map[string]string // by the labels column's text
}

func newTraitReader() *traitReader {
	return &traitReader{strs: map[string]string{}, labelm: map[string]map[string]string{}}
}

// str is s, the one copy of it: a copy of its own, since s may be a part
// of a longer string (a client's facts as stored) that would stay.
func (in *traitReader) str(s string) string {
	if t, ok := in.strs[s]; ok {
		return t
	}
	t := strings.Clone(s)
	in.strs[t] = t
	return t
}

// stringMap is StringMap(s), its keys and values kept once.
func (in *traitReader) stringMap(s string) map[string]string {
	if m, ok := plainStringMap(s, in.str); ok {
		return m
	}
	m := StringMap(s)
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[in.str(k)] = in.str(v)
	}
	return out
}

// labels is stringMap(s), the same map for the same text: the column is
// written in one form (StringMapColumn), keys sorted.
func (in *traitReader) labels(s string) map[string]string {
	if m, ok := in.labelm[s]; ok {
		return m
	}
	m := in.stringMap(s)
	in.labelm[strings.Clone(s)] = m
	return m
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
