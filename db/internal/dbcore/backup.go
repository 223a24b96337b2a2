package dbcore

// Database maintenance that is not SQL: the backup file (created
// exclusively, synced, removed on failure; checked before a restore reads
// it), the schema versions (of the embedded migrations, of a database, of
// a backup) and migrating a database up.

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/scirectl/scirectl/db"
)

// LatestEmbedded reads the version off a driver's embedded migration file
// names (NNNN_name.up.sql in dir "migrations" of fsys). It panics when
// none parses or when the newest differs from want, the driver's
// SchemaVersion, which Ready demands: a programming error any test
// catches at once.
func LatestEmbedded(driver string, fsys fs.ReadDirFS, want uint) uint {
	latest, err := db.LatestMigration(fsys, "migrations")
	if err != nil {
		panic(driver + ": " + err.Error())
	}
	if latest != want {
		panic(fmt.Sprintf("%s: the newest embedded migration is %d but SchemaVersion is %d", driver, latest, want))
	}
	return latest
}

// MigrateUp brings the database behind conn up to the newest migration of
// fsys's "migrations" directory, through golang-migrate's driver dbName,
// which newDriver makes of conn.
func MigrateUp(fsys fs.FS, dbName string, conn *sql.DB, newDriver func(*sql.DB) (database.Driver, error)) error {
	m, err := NewMigrate(fsys, dbName, conn, newDriver)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return err
	}
	return nil
}

// NewMigrate is golang-migrate over the database behind conn (through
// its driver dbName, which newDriver makes of conn) and the migrations of
// fsys's "migrations" directory.
func NewMigrate(fsys fs.FS, dbName string, conn *sql.DB, newDriver func(*sql.DB) (database.Driver, error)) (*migrate.Migrate, error) {
	drv, err := newDriver(conn)
	if err != nil {
		return nil, err
	}
	src, err := iofs.New(fsys, "migrations")
	if err == nil {
		var m *migrate.Migrate
		if m, err = migrate.NewWithInstance("iofs", src, dbName, drv); err == nil {
			return m, nil
		}
	}
	drv.Close()
	return nil, err
}

// SchemaVersionSQL reads golang-migrate's version table, in either
// dialect; ScanSchemaVersion reads its row.
const SchemaVersionSQL = `SELECT version, dirty FROM schema_migrations LIMIT 1`

// ScanSchemaVersion reads a row of SchemaVersionSQL: the version and
// whether a migration to it failed half-way.
func ScanSchemaVersion(row Scanner) (uint, bool, error) {
	var v int64
	var dirty bool
	err := row.Scan(&v, &dirty)
	if NoRows(err) {
		return 0, false, errors.New("no schema version recorded")
	} else if err != nil {
		return 0, false, err
	}
	return uint(max(v, 0)), dirty, nil
}

// CheckBackupDirty refuses a backup whose schema a migration left half-way.
func CheckBackupDirty(v uint, dirty bool) error {
	if dirty {
		return fmt.Errorf("the backup's schema is dirty at version %d (a migration failed half-way in it): %w", v, db.ErrInvalid)
	}
	return nil
}

// CheckBackupVersion refuses a backup of another schema version than the
// database's.
func CheckBackupVersion(backup, cur uint) error {
	if backup != cur {
		return fmt.Errorf("backup has schema version %d, this server has %d: restore it with a server of version %d, or migrate it first: %w",
			backup, cur, backup, db.ErrInvalid)
	}
	return nil
}

// WriteBackup makes a backup file at path: the directory must exist, the
// file must not (a backup never overwrites anything); it is created
// exclusively and 0600 (it holds token hashes), write fills it (given its
// absolute path), and it is synced, with its directory, before WriteBackup
// returns. When anything fails the file is removed, and so are the files
// named by it plus each of leftovers (an SQLite journal, say).
func WriteBackup(path string, leftovers []string, write func(abs string) error) (err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	dir := filepath.Dir(abs)
	if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup to %s: directory %s does not exist: %w", path, dir, db.ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("backup to %s: %w", path, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("backup to %s: %s is not a directory: %w", path, dir, db.ErrInvalid)
	}
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("backup to %s: the file exists (a backup never overwrites one): %w", path, db.ErrConflict)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("backup to %s: permission denied: %w", path, db.ErrInvalid)
	case err != nil:
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(abs) // ours: created exclusively above
			for _, suffix := range leftovers {
				os.Remove(abs + suffix)
			}
		}
	}()
	if err := write(abs); err != nil {
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	if err := syncPath(abs); err != nil {
		return fmt.Errorf("backup to %s: sync: %w", path, err)
	}
	if err := syncPath(dir); err != nil {
		return fmt.Errorf("backup to %s: sync directory: %w", path, err)
	}
	return nil
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// sqliteHeader starts every SQLite database file: the format of every
// backup, whichever driver wrote it.
var sqliteHeader = []byte("SQLite format 3\x00")

// BackupFile is the absolute path of the backup a restore reads, checked
// (CheckBackupFile).
func BackupFile(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err == nil {
		err = CheckBackupFile(abs)
	}
	if err != nil {
		return "", fmt.Errorf("restore from %s: %w", path, err)
	}
	return abs, nil
}

// CheckBackupFile turns the plain mistakes of a restore (no file, a
// directory, a file that is not SQLite at all) into clear errors before
// anything opens the file at abs.
func CheckBackupFile(abs string) error {
	f, err := os.Open(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no such file: %w", db.ErrNotFound)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("permission denied: %w", db.ErrInvalid)
	case err != nil:
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return err
	} else if fi.IsDir() {
		return fmt.Errorf("is a directory, not a backup file: %w", db.ErrInvalid)
	}
	hdr := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, hdr); err != nil || !bytes.Equal(hdr, sqliteHeader) {
		return fmt.Errorf("not a scirectl database (not an SQLite file): %w", db.ErrInvalid)
	}
	return nil
}

// Quote makes an SQL identifier of a table or column name.
func Quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// TriggerWritten is the table the schema's triggers write (events): a copy
// of the database (backup, restore) copies it last, after emptying it, so
// that the rows the copies of the other tables made it write go and the
// copied ones stay.
const TriggerWritten = "events"
