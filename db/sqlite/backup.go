package sqlite

// Database maintenance: backup, restore, reset and the schema version.

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// LatestVersion is the highest migration embedded in this binary: the
// version OpenFile migrates a database to.
var LatestVersion = dbcore.LatestEmbedded("sqlite", migrations, SchemaVersion)

// Backup copies the database with VACUUM INTO on the writer connection: one
// read transaction's snapshot, so the copy is consistent however many writes
// go on (they wait for the writer meanwhile), and compacted. The file is
// created first, exclusively and 0600 (the copy holds token hashes), which
// VACUUM INTO accepts because it is empty; and it is synced before Backup
// returns, which VACUUM INTO alone does not do.
func (s *Store) Backup(ctx context.Context, path string) error {
	return dbcore.WriteBackup(path, nil, func(abs string) error {
		_, err := s.w.ExecContext(ctx, `VACUUM INTO ?`, abs)
		return err
	})
}

// Restore attaches the backup read-only to the writer connection and, in
// one IMMEDIATE transaction with foreign keys checked at commit, empties
// every table and fills it from the backup. Any error rolls the whole
// transaction back. Columns are named, not taken in order, and both sides
// must have the same tables with the same columns.
func (s *Store) Restore(ctx context.Context, path string) error {
	abs, err := dbcore.BackupFile(path)
	if err != nil {
		return err
	}
	// One connection for ATTACH, the transaction and DETACH: the attachment
	// belongs to a connection, and the writer pool has just this one, so
	// every other write waits until the restore is done.
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("restore from %s: %w", path, err)
	}
	defer conn.Close()
	// Read-only: ATTACH would otherwise create a missing file, and nothing
	// here may change the backup.
	uri := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?mode=ro"
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS bk`, uri); err != nil {
		return fmt.Errorf("restore from %s: not a scirectl database (%v): %w", path, err, db.ErrInvalid)
	}
	defer func() {
		if _, derr := conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE bk`); derr != nil {
			discard(conn) // never hand out a connection with the backup attached
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("restore from %s: %w", path, err)
	}
	if err := restoreTx(ctx, tx, path); err != nil {
		tx.Rollback()
		return err
	}
	err = tx.Commit()
	s.idle.changed() // every run is new: no idle mark holds (idlemarks.go)
	if err != nil {
		// A failed COMMIT can leave SQLite's transaction open; closing the
		// connection rolls it back.
		discard(conn)
		return fmt.Errorf("restore from %s: %w", path, err)
	}
	return nil
}

// discard makes database/sql close the connection instead of reusing it.
func discard(conn *sql.Conn) {
	conn.Raw(func(any) error { return sqldriver.ErrBadConn })
}

func restoreTx(ctx context.Context, tx *sql.Tx, path string) error {
	cur, _, err := schemaVersion(ctx, tx, "main")
	if err != nil {
		return fmt.Errorf("restore from %s: %w", path, err)
	}
	bv, bdirty, err := schemaVersion(ctx, tx, "bk")
	if err != nil {
		return fmt.Errorf("restore from %s: not a scirectl database (%v): %w", path, err, db.ErrInvalid)
	}
	if err := dbcore.CheckBackupDirty(bv, bdirty); err != nil {
		return fmt.Errorf("restore from %s: %w", path, err)
	}
	if err := dbcore.CheckBackupVersion(bv, cur); err != nil {
		return fmt.Errorf("restore from %s: %w", path, err)
	}
	tables, err := tableColumns(ctx, tx, "main")
	if err != nil {
		return fmt.Errorf("restore from %s: %w", path, err)
	}
	bkTables, err := tableColumns(ctx, tx, "bk")
	if err != nil {
		return fmt.Errorf("restore from %s: not a scirectl database (%v): %w", path, err, db.ErrInvalid)
	}
	for _, t := range tables {
		if !slices.Equal(t.columns, columnsOf(bkTables, t.name)) {
			return fmt.Errorf("restore from %s: table %s differs from this database's (columns %v, want %v): %w",
				path, t.name, columnsOf(bkTables, t.name), t.columns, db.ErrInvalid)
		}
	}
	if len(bkTables) != len(tables) {
		return fmt.Errorf("restore from %s: it has %d tables, this database %d: %w", path, len(bkTables), len(tables), db.ErrInvalid)
	}
	// Foreign keys are checked at COMMIT, so tables may be filled in any
	// order; cascades still run, which is harmless as everything goes.
	if _, err := tx.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`); err != nil {
		return fmt.Errorf("restore from %s: %w", path, err)
	}
	versions, err := dbcore.TakeVersions(ctx, querier{q: tx})
	if err != nil {
		return fmt.Errorf("restore from %s: %w", path, err)
	}
	for _, t := range tables {
		if _, err := tx.ExecContext(ctx, `DELETE FROM main.`+dbcore.Quote(t.name)); err != nil {
			return fmt.Errorf("restore from %s: empty %s: %w", path, t.name, err)
		}
	}
	for _, t := range tables {
		cols := make([]string, len(t.columns))
		for i, c := range t.columns {
			cols[i] = dbcore.Quote(c)
		}
		list := strings.Join(cols, ", ")
		if t.name == dbcore.TriggerWritten { // last (tableColumns' order)
			if _, err := tx.ExecContext(ctx, `DELETE FROM main.`+dbcore.Quote(t.name)); err != nil {
				return fmt.Errorf("restore from %s: empty %s: %w", path, t.name, err)
			}
		}
		q := `INSERT INTO main.` + dbcore.Quote(t.name) + ` (` + list + `) SELECT ` + list + ` FROM bk.` + dbcore.Quote(t.name)
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("restore from %s: copy %s: %v: %w", path, t.name, err, db.ErrInvalid)
		}
	}
	// The AUTOINCREMENT high-water marks: DELETE kept this database's, and
	// the INSERTs raised them to the highest restored id; the backup's may
	// be higher still (it had deleted its newest rows). Ids are never
	// handed out twice, whichever database handed them out.
	if _, err := tx.ExecContext(ctx, `INSERT INTO main.sqlite_sequence (name, seq)
		SELECT b.name, 0 FROM bk.sqlite_sequence b
		WHERE b.name IN (SELECT name FROM main.sqlite_master WHERE type = 'table')
		  AND b.name NOT IN (SELECT name FROM main.sqlite_sequence)`); err != nil {
		return fmt.Errorf("restore from %s: id sequences: %w", path, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE main.sqlite_sequence
		SET seq = max(seq, (SELECT b.seq FROM bk.sqlite_sequence b WHERE b.name = main.sqlite_sequence.name))
		WHERE name IN (SELECT name FROM bk.sqlite_sequence)`); err != nil {
		return fmt.Errorf("restore from %s: id sequences: %w", path, err)
	}
	if err := dbcore.AdvanceVersions(ctx, querier{q: tx}, dialect, versions); err != nil {
		return fmt.Errorf("restore from %s: %w", path, err)
	}
	// Check here rather than let COMMIT fail: a COMMIT refused for a
	// deferred foreign key leaves the transaction open.
	rows, err := tx.QueryContext(ctx, `PRAGMA main.foreign_key_check`)
	if err != nil {
		return fmt.Errorf("restore from %s: %w", path, err)
	}
	defer rows.Close()
	if rows.Next() {
		var table string
		var rowid sql.NullInt64
		var parent string
		var fkid int64
		rows.Scan(&table, &rowid, &parent, &fkid)
		return fmt.Errorf("restore from %s: row %d of %s refers to a missing row of %s: %w", path, rowid.Int64, table, parent, db.ErrInvalid)
	}
	return rows.Err()
}

// Reset empties every table in one transaction. sqlite_sequence is not a
// data table and keeps its high-water marks: an id handed out before a
// reset is never handed out again (AUTOINCREMENT, schema version 2). The
// change counters go on from where they were (dbcore.AdvanceVersions).
func (s *Store) Reset(ctx context.Context) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		tables, err := tableColumns(ctx, tx, "main")
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`); err != nil {
			return err
		}
		versions, err := dbcore.TakeVersions(ctx, querier{q: tx})
		if err != nil {
			return err
		}
		for _, t := range tables {
			if _, err := tx.ExecContext(ctx, `DELETE FROM main.`+dbcore.Quote(t.name)); err != nil {
				return fmt.Errorf("empty %s: %w", t.name, err)
			}
		}
		return dbcore.AdvanceVersions(ctx, querier{q: tx}, dialect, versions)
	})
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	return nil
}

type table struct {
	name    string
	columns []string
}

func columnsOf(ts []table, name string) []string {
	for _, t := range ts {
		if t.name == name {
			return t.columns
		}
	}
	return nil
}

// tableColumns lists the data tables of a schema (main or an attached
// one) with their columns in order: every table but SQLite's own and
// golang-migrate's version table, sorted by name.
func tableColumns(ctx context.Context, tx *sql.Tx, schema string) ([]table, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM `+schema+`.sqlite_master
		WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name <> 'schema_migrations'
		ORDER BY name = '`+dbcore.TriggerWritten+`', name`)
	if err != nil {
		return nil, err
	}
	var out []table
	for rows.Next() {
		var t table
		if err := rows.Scan(&t.name); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		cols, err := tx.QueryContext(ctx, `SELECT name FROM pragma_table_info(?, ?) ORDER BY cid`, out[i].name, schema)
		if err != nil {
			return nil, err
		}
		for cols.Next() {
			var c string
			if err := cols.Scan(&c); err != nil {
				cols.Close()
				return nil, err
			}
			out[i].columns = append(out[i].columns, c)
		}
		cols.Close()
		if err := cols.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func schemaVersion(ctx context.Context, tx *sql.Tx, schema string) (uint, bool, error) {
	return dbcore.ScanSchemaVersion(tx.QueryRowContext(ctx, `SELECT version, dirty FROM `+schema+`.schema_migrations LIMIT 1`))
}

// Inspection is what Inspect finds in a database file.
type Inspection struct {
	Exists  bool // the file exists
	Version uint // schema version; 0 when the file has no schema yet
	Dirty   bool
	Servers []db.ServerInfo // the servers registry, newest first
}

// Inspect reads the database file of a sqlite:// URL without changing it:
// read-only, and without the migration opening it with db.Open performs.
// The CLI's --offline commands look with it whether a server still uses the
// file, and at which version it is, before they open (and so migrate) it.
func Inspect(ctx context.Context, rawURL string) (Inspection, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Inspection{}, fmt.Errorf("database URL: %w", err)
	}
	path := u.Host + u.Path
	if u.Opaque != "" {
		path = u.Opaque
	}
	if u.Scheme != "sqlite" || path == "" {
		return Inspection{}, fmt.Errorf("inspect %q: not a sqlite:// URL with a path", db.Redact(rawURL))
	}
	var in Inspection
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return in, nil
	} else if err != nil {
		return in, fmt.Errorf("inspect %s: %w", path, err)
	}
	in.Exists = true
	conn, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return in, fmt.Errorf("inspect %s: %w", path, err)
	}
	defer conn.Close()
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return in, fmt.Errorf("inspect %s: %w", path, err)
	}
	if n == 0 {
		return in, nil
	}
	var v int64
	err = conn.QueryRowContext(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&v, &in.Dirty)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return in, fmt.Errorf("inspect %s: %w", path, err)
	}
	in.Version = uint(max(v, 0))
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'servers'`).Scan(&n); err != nil || n == 0 {
		return in, err
	}
	rows, err := conn.QueryContext(ctx, `SELECT `+dbcore.ServerCols+` FROM servers ORDER BY id DESC`)
	if err != nil {
		return in, fmt.Errorf("inspect %s: %w", path, err)
	}
	defer rows.Close()
	for rows.Next() {
		si, err := dbcore.ScanServer(rows)
		if err != nil {
			return in, fmt.Errorf("inspect %s: %w", path, err)
		}
		in.Servers = append(in.Servers, si)
	}
	return in, rows.Err()
}
