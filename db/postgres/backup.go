package postgres

// Database maintenance: backup, restore, reset and the schema version.
//
// A backup is the SQLite driver's database file: the SQLite schema (made by
// sqlite.OpenFile, so exactly what that driver creates) filled with the rows
// of one PostgreSQL snapshot. It restores into either engine, and a backup
// the SQLite driver wrote restores here: that is how a fleet moves from the
// embedded default to PostgreSQL. The two drivers' schemas have the same
// tables with the same columns in the same order, and the same migration
// version; only the column types differ (BOOLEAN here for SQLite's 0/1
// INTEGER flags, BYTEA for BLOB), and the copy converts them.

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
	"github.com/scirectl/scirectl/db/sqlite"
)

// dataTables are the tables of the schema, every one but golang-migrate's
// version table, by name. Reset and Restore touch these and nothing else,
// so a schema shared with other applications keeps their tables; a test
// checks the list against the migrated schema.
var dataTables = []string{
	"acl_rules", "change_versions", "client_group_children", "client_group_members", "client_groups", "clients", "idempotency_keys", "jobs",
	"operations", "run_output", "runs", "schedule_ticks", "schedules", "servers", "user_group_children", "user_group_members", "user_groups",
	"user_tokens", "users", "webhook_deliveries", "webhooks",
	dbcore.TriggerWritten, // last: see dbcore.TriggerWritten
}

// LatestVersion is the highest migration embedded in this binary: the
// version OpenURL migrates a database to. (That it equals the SQLite
// driver's, whose files Backup writes, is checked by a test and by Backup,
// not here: a mismatch must not stop binaries that use SQLite only.)
var LatestVersion = dbcore.LatestEmbedded("postgres", migrations, SchemaVersion)

func schemaVersion(ctx context.Context, q queryer) (uint, bool, error) {
	return dbcore.ScanSchemaVersion(q.QueryRow(ctx, dbcore.SchemaVersionSQL))
}

// column is one column of a table and its PostgreSQL type (information
// schema's data_type: bigint, text, boolean, bytea).
type column struct{ name, typ string }

type table struct {
	name    string
	columns []column
}

func (t table) names() []string {
	out := make([]string, len(t.columns))
	for i, c := range t.columns {
		out[i] = c.name
	}
	return out
}

// pgTables lists dataTables with their columns in order, as this database
// has them.
func pgTables(ctx context.Context, q queryer) ([]table, error) {
	byName := map[string]*table{}
	out := make([]table, len(dataTables))
	for i, n := range dataTables {
		out[i].name = n
		byName[n] = &out[i]
	}
	err := eachRow(ctx, q, `SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = ANY($1) ORDER BY table_name, ordinal_position`,
		[]any{dataTables}, func(rows pgx.Rows) error {
			var tn string
			var c column
			if err := rows.Scan(&tn, &c.name, &c.typ); err != nil {
				return err
			}
			byName[tn].columns = append(byName[tn].columns, c)
			return nil
		})
	if err != nil {
		return nil, err
	}
	for _, t := range out {
		if len(t.columns) == 0 {
			return nil, fmt.Errorf("table %s is missing from the schema", t.name)
		}
	}
	return out, nil
}

// sqliteTables lists the tables of an SQLite file but its version table,
// with their columns in order, by name (the SQLite driver's tableColumns).
func sqliteTables(ctx context.Context, q interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}) (map[string][]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\' AND m.name <> 'schema_migrations'
		ORDER BY m.name, p.cid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			return nil, err
		}
		out[t] = append(out[t], c)
	}
	return out, rows.Err()
}

// sameTables fails unless an SQLite file has exactly the tables and
// columns of this database.
func sameTables(pg []table, lite map[string][]string) error {
	for _, t := range pg {
		if got := lite[t.name]; !slices.Equal(got, t.names()) {
			return fmt.Errorf("table %s differs from this database's (columns %v, want %v)", t.name, got, t.names())
		}
	}
	if len(lite) != len(pg) {
		var extra []string
		for n := range lite {
			if !slices.Contains(dataTables, n) {
				extra = append(extra, n)
			}
		}
		slices.Sort(extra)
		return fmt.Errorf("it has %d tables, this database %d (unknown: %s)", len(lite), len(pg), strings.Join(extra, ", "))
	}
	return nil
}

// sqliteURI is the database/sql name of an SQLite file (a path with any
// characters, escaped as a URI) with the given query.
func sqliteURI(abs, query string) string {
	return "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + query
}

// Backup writes one REPEATABLE READ snapshot of every table into a new
// SQLite database file at path, with the SQLite driver's schema. Writers go
// on meanwhile; the copy is one point in time. The file is created
// exclusively and 0600 (it holds token hashes), is synced before Backup
// returns, and is removed when the backup fails.
func (s *Store) Backup(ctx context.Context, path string) error {
	return dbcore.WriteBackup(path, []string{"-journal", "-wal", "-shm"}, func(abs string) error { return s.backupTo(ctx, abs) })
}

func (s *Store) backupTo(ctx context.Context, abs string) error {
	// The SQLite schema, made by the SQLite driver itself.
	st, err := sqlite.OpenFile(ctx, abs, "FULL")
	if err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	lite, err := sql.Open("sqlite", sqliteURI(abs, "_pragma=busy_timeout(10000)&_pragma=journal_mode(DELETE)&_pragma=synchronous(FULL)"))
	if err != nil {
		return err
	}
	defer lite.Close()
	lite.SetMaxOpenConns(1)
	liteVersion, _, err := sqliteVersion(ctx, lite)
	if err != nil {
		return err
	}
	return s.read(ctx, func(tx pgx.Tx) error {
		v, dirty, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if dirty || v != liteVersion {
			return fmt.Errorf("this database's schema is at version %d (dirty=%v), the SQLite backup format at %d: migrate first", v, dirty, liteVersion)
		}
		tables, err := pgTables(ctx, tx)
		if err != nil {
			return err
		}
		ltx, err := lite.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer ltx.Rollback()
		have, err := sqliteTables(ctx, ltx)
		if err != nil {
			return err
		}
		if err := sameTables(tables, have); err != nil {
			return fmt.Errorf("the SQLite driver's schema: %w", err)
		}
		for _, t := range tables {
			// A new SQLite database is not quite empty: its schema starts
			// the change counters (change_versions), and the copies of the
			// tables before events made the triggers write some (events
			// come last: dataTables' order, dbcore.TriggerWritten).
			if _, err := ltx.ExecContext(ctx, `DELETE FROM `+dbcore.Quote(t.name)); err != nil {
				return fmt.Errorf("empty %s: %w", t.name, err)
			}
			if err := copyToSQLite(ctx, tx, ltx, t); err != nil {
				return fmt.Errorf("copy %s: %w", t.name, err)
			}
			// The backup's sequence is the highest id ever handed out, not
			// the highest one left, so a restore of it never reuses one.
			seq, err := idSequence(ctx, tx, t.name)
			if err != nil {
				return fmt.Errorf("the id sequence of %s: %w", t.name, err)
			}
			if seq == "" {
				continue
			}
			high, err := idHighWater(ctx, tx, seq)
			if err != nil {
				return fmt.Errorf("the id sequence of %s: %w", t.name, err)
			}
			if _, err := ltx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) SELECT ?, 0
				WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?)`, t.name, t.name); err != nil {
				return fmt.Errorf("the id sequence of %s: %w", t.name, err)
			}
			if _, err := ltx.ExecContext(ctx, `UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?`, high, t.name); err != nil {
				return fmt.Errorf("the id sequence of %s: %w", t.name, err)
			}
		}
		return ltx.Commit()
	})
}

// copyToSQLite copies every row of a table, converting BOOLEAN to 0/1.
func copyToSQLite(ctx context.Context, from pgx.Tx, to *sql.Tx, t table) error {
	cols := make([]string, len(t.columns))
	for i, c := range t.columns {
		cols[i] = dbcore.Quote(c.name)
	}
	list := strings.Join(cols, ", ")
	ins, err := to.PrepareContext(ctx, `INSERT INTO `+dbcore.Quote(t.name)+` (`+list+`) VALUES (`+strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")+`)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	rows, err := from.Query(ctx, `SELECT `+list+` FROM `+dbcore.Quote(t.name)+` ORDER BY 1, 2`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return err
		}
		for i, v := range vals {
			if b, ok := v.(bool); ok {
				vals[i] = boolInt(b)
			}
		}
		if _, err := ins.ExecContext(ctx, vals...); err != nil {
			return err
		}
	}
	return rows.Err()
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// sqliteSequences reads an SQLite database's AUTOINCREMENT high-water
// marks (sqlite_sequence): the highest id each table ever handed out.
func sqliteSequences(ctx context.Context, q interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}) (map[string]int64, error) {
	out := map[string]int64{}
	rows, err := q.QueryContext(ctx, `SELECT name, seq FROM sqlite_sequence`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return out, nil // no AUTOINCREMENT table ever got a row
		}
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var seq int64
		if err := rows.Scan(&name, &seq); err != nil {
			return nil, err
		}
		out[name] = seq
	}
	return out, rows.Err()
}

func sqliteVersion(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}) (uint, bool, error) {
	return dbcore.ScanSchemaVersion(q.QueryRowContext(ctx, dbcore.SchemaVersionSQL))
}

// Restore replaces every row of every table with those of a backup file
// (an SQLite database with the SQLite driver's schema, from either
// driver's Backup), in one transaction: the tables are truncated, filled
// with COPY, their id sequences set past the highest id, and the foreign
// keys (deferred meanwhile) checked before COMMIT. Any error rolls it all
// back. The backup is opened read-only and read in one transaction.
func (s *Store) Restore(ctx context.Context, path string) error {
	abs, err := dbcore.BackupFile(path)
	if err != nil {
		return err
	}
	lite, err := sql.Open("sqlite", sqliteURI(abs, "mode=ro&_pragma=busy_timeout(10000)&_pragma=query_only(1)"))
	if err != nil {
		return fmt.Errorf("restore from %s: %w", path, err)
	}
	defer lite.Close()
	lite.SetMaxOpenConns(1)
	ltx, err := lite.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("restore from %s: not a scirectl database (%v): %w", path, err, db.ErrInvalid)
	}
	defer ltx.Rollback()
	bv, bdirty, err := sqliteVersion(ctx, ltx)
	if err != nil {
		return fmt.Errorf("restore from %s: not a scirectl database (%v): %w", path, err, db.ErrInvalid)
	}
	if err := dbcore.CheckBackupDirty(bv, bdirty); err != nil {
		return fmt.Errorf("restore from %s: %w", path, err)
	}
	bkTables, err := sqliteTables(ctx, ltx)
	if err != nil {
		return fmt.Errorf("restore from %s: not a scirectl database (%v): %w", path, err, db.ErrInvalid)
	}
	bkSeqs, err := sqliteSequences(ctx, ltx)
	if err != nil {
		return fmt.Errorf("restore from %s: not a scirectl database (%v): %w", path, err, db.ErrInvalid)
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		cur, _, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if err := dbcore.CheckBackupVersion(bv, cur); err != nil {
			return err
		}
		tables, err := pgTables(ctx, tx)
		if err != nil {
			return err
		}
		if err := sameTables(tables, bkTables); err != nil {
			return fmt.Errorf("%w: %w", err, db.ErrInvalid)
		}
		if _, err := tx.Exec(ctx, `SET CONSTRAINTS ALL DEFERRED`); err != nil {
			return err
		}
		// Each sequence ends past the ids it handed out before, those
		// the backup's database had handed out, and the rows restored.
		high := map[string]int64{}
		seqs := map[string]string{}
		for _, t := range tables {
			if !slices.ContainsFunc(t.columns, func(c column) bool { return c.name == "id" }) {
				continue
			}
			seq, err := idSequence(ctx, tx, t.name)
			if err != nil {
				return fmt.Errorf("the id sequence of %s: %w", t.name, err)
			} else if seq == "" {
				return fmt.Errorf("table %s has an id column but no id sequence", t.name)
			}
			if high[t.name], err = idHighWater(ctx, tx, seq); err != nil {
				return fmt.Errorf("the id sequence of %s: %w", t.name, err)
			}
			seqs[t.name] = seq
			high[t.name] = max(high[t.name], bkSeqs[t.name])
		}
		if err := truncate(ctx, tx); err != nil {
			return err
		}
		versions, err := dbcore.TakeVersions(ctx, querier{tx})
		if err != nil {
			return err
		}
		for _, t := range tables {
			if t.name == dbcore.TriggerWritten { // last (dataTables' order)
				if _, err := tx.Exec(ctx, `DELETE FROM `+dbcore.Quote(t.name)); err != nil {
					return fmt.Errorf("empty %s: %w", t.name, err)
				}
			}
			if err := copyFromSQLite(ctx, ltx, tx, t); err != nil {
				return fmt.Errorf("copy %s: %v: %w", t.name, err, db.ErrInvalid)
			}
			if t.name == dbcore.TriggerWritten {
				// A backup none of whose events has a seq is SQLite's (its
				// readers' ids are the row ids, the last of a row's span)
				// or PostgreSQL's before any reader numbered them (ids in
				// insert order): either way the ids are the numbering, and
				// followers' and webhooks' positions stay where they were.
				if _, err := tx.Exec(ctx, `UPDATE events SET seq = id WHERE NOT EXISTS (SELECT 1 FROM events WHERE seq IS NOT NULL)`); err != nil {
					return fmt.Errorf("number the restored events: %w", err)
				}
				// Readers' ids (seq) go on from the highest restored.
				if _, err := tx.Exec(ctx, `SELECT setval('events_seq', GREATEST((SELECT COALESCE(max(seq), 0) FROM events),
					(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM events_seq), 1),
					GREATEST((SELECT COALESCE(max(seq), 0) FROM events), (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM events_seq)) > 0)`); err != nil {
					return fmt.Errorf("set the events' numbering: %w", err)
				}
			}
			if seq, ok := seqs[t.name]; ok {
				_, err := tx.Exec(ctx, `SELECT setval($1::regclass, GREATEST(COALESCE(MAX(id), 0), $2, 1), GREATEST(COALESCE(MAX(id), 0), $2) > 0)
					FROM `+dbcore.Quote(t.name), seq, high[t.name])
				if err != nil {
					return fmt.Errorf("set the id sequence of %s: %w", t.name, err)
				}
			}
		}
		if err := dbcore.AdvanceVersions(ctx, querier{tx}, dialect, versions); err != nil {
			return err
		}
		// Check here rather than let COMMIT fail, for a clear message.
		if _, err := tx.Exec(ctx, `SET CONSTRAINTS ALL IMMEDIATE`); err != nil {
			if pgCode(err) == codeForeignKeyViolation {
				return fmt.Errorf("%v: %w", err, db.ErrInvalid)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore from %s: %w", path, classify(err))
	}
	return nil
}

// copyFromSQLite copies every row of a table of the backup with COPY,
// converting each value to the PostgreSQL column's type.
func copyFromSQLite(ctx context.Context, from *sql.Tx, to pgx.Tx, t table) error {
	cols := make([]string, len(t.columns))
	for i, c := range t.columns {
		cols[i] = dbcore.Quote(c.name)
	}
	rows, err := from.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+dbcore.Quote(t.name))
	if err != nil {
		return err
	}
	defer rows.Close()
	src := &sqliteRows{rows: rows, t: t, vals: make([]any, len(cols)), ptrs: make([]any, len(cols))}
	for i := range src.vals {
		src.ptrs[i] = &src.vals[i]
	}
	_, err = to.CopyFrom(ctx, pgx.Identifier{t.name}, t.names(), src)
	if err != nil {
		return err
	}
	return src.err
}

// sqliteRows is a pgx.CopyFromSource over the rows of an SQLite query.
type sqliteRows struct {
	rows *sql.Rows
	t    table
	vals []any
	ptrs []any
	row  int
	err  error
}

func (r *sqliteRows) Next() bool {
	if r.err != nil || !r.rows.Next() {
		return false
	}
	r.row++
	if err := r.rows.Scan(r.ptrs...); err != nil {
		r.err = err
		return false
	}
	for i, c := range r.t.columns {
		v, err := toPG(r.vals[i], c.typ)
		if err != nil {
			r.err = fmt.Errorf("row %d, column %s: %w", r.row, c.name, err)
			return false
		}
		r.vals[i] = v
	}
	return true
}

func (r *sqliteRows) Values() ([]any, error) { return r.vals, nil }

func (r *sqliteRows) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.rows.Err()
}

// toPG converts a value SQLite returned to what a PostgreSQL column of
// type typ takes.
func toPG(v any, typ string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case "bigint":
		if n, ok := v.(int64); ok {
			return n, nil
		}
	case "boolean":
		switch n := v.(type) {
		case int64:
			if n == 0 || n == 1 {
				return n == 1, nil
			}
		case bool:
			return n, nil
		}
	case "text":
		switch s := v.(type) {
		case string:
			return s, nil
		case []byte:
			return string(s), nil
		}
	case "bytea":
		switch b := v.(type) {
		case []byte:
			return b, nil
		case string:
			return []byte(b), nil
		}
	default:
		return nil, fmt.Errorf("no conversion to PostgreSQL type %s", typ)
	}
	return nil, fmt.Errorf("%T value %v does not fit a %s column", v, v, typ)
}

// truncate empties every data table in one statement (foreign keys allow
// nothing else). The id sequences go on where they were: never RESTART
// IDENTITY, which would hand out the ids of deleted rows again. The
// change counters are left to dbcore.TakeVersions, which reads them once
// this statement's locks have made every writer of the clients end (the
// writers lock clients, then the counter's row: so does this, in order).
func truncate(ctx context.Context, tx pgx.Tx) error {
	names := make([]string, 0, len(dataTables))
	for _, n := range dataTables {
		if n != "change_versions" {
			names = append(names, dbcore.Quote(n))
		}
	}
	_, err := tx.Exec(ctx, `TRUNCATE `+strings.Join(names, ", "))
	return err
}

// idSequence names the identity sequence of a table's id column ("" for a
// table without one), quoted as SQL takes it.
func idSequence(ctx context.Context, q queryer, table string) (string, error) {
	var seq *string
	err := q.QueryRow(ctx, `SELECT pg_get_serial_sequence($1, 'id')
		WHERE EXISTS (SELECT 1 FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'id')`, table).Scan(&seq)
	if noRows(err) || (err == nil && seq == nil) {
		return "", nil
	}
	return *seq, err
}

// idHighWater is the highest id a table's sequence has handed out (0 for
// none): the value the next id must exceed.
func idHighWater(ctx context.Context, q queryer, seq string) (int64, error) {
	var last int64
	var called bool
	if err := q.QueryRow(ctx, `SELECT last_value, is_called FROM `+seq).Scan(&last, &called); err != nil {
		return 0, err
	}
	if !called {
		last--
	}
	return max(last, 0), nil
}

// Reset empties every table in one transaction. The ids go on from where
// they were, as SQLite's AUTOINCREMENT ones do: an id handed out before a
// reset is never handed out again; and so do the change counters.
func (s *Store) Reset(ctx context.Context) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := truncate(ctx, tx); err != nil {
			return err
		}
		versions, err := dbcore.TakeVersions(ctx, querier{tx})
		if err != nil {
			return err
		}
		return dbcore.AdvanceVersions(ctx, querier{tx}, dialect, versions)
	})
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	return nil
}
