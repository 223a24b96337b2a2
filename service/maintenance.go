package service

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/scirectl/scirectl/api"
)

// The db.* maintenance operations, shared by the server (db.backup, …,
// under the gate as modifiers) and the CLI's --offline mode (on a store it
// opened itself, with the database locked). Each is atomic in the store.

// AdminRepair makes the built-in admin user and its token file work again
// after the database's contents were replaced or emptied, and says whether
// the token file was rewritten and where it is. Its caller knows where the
// data directory is (the server's, or the CLI's --data-dir).
type AdminRepair func(ctx context.Context) (renewed bool, tokenFile string, err error)

// checkPath refuses a path that is not absolute: the store writes and
// reads on its own host, whose working directory the caller cannot know.
func checkPath(path string) (string, error) {
	if !filepath.IsAbs(path) {
		return "", refuse(ErrInvalid, "path %q is not absolute: give a path on the server host, such as /var/backups/scire.db", path)
	}
	return filepath.Clean(path), nil
}

// Backup writes a consistent copy of the whole database into a new file at
// path (absolute), and says how big it is and how long it took.
func (s *Service) Backup(ctx context.Context, path string) (api.DBBackup, error) {
	path, err := checkPath(path)
	if err != nil {
		return api.DBBackup{}, err
	}
	start := time.Now()
	if err := s.Store.Backup(ctx, path); err != nil {
		return api.DBBackup{}, err
	}
	out := api.DBBackup{Path: path, DurationMS: time.Since(start).Milliseconds()}
	if fi, err := os.Stat(path); err == nil {
		out.Bytes = fi.Size()
	}
	return out, nil
}

// Restore replaces the database's contents with those of the backup at
// path (absolute), then repairs the admin user and token.
func (s *Service) Restore(ctx context.Context, path string, repair AdminRepair) (api.DBRestore, error) {
	path, err := checkPath(path)
	if err != nil {
		return api.DBRestore{}, err
	}
	if err := s.Store.Restore(ctx, path); err != nil {
		return api.DBRestore{}, err
	}
	s.invalidate()
	renewed, file, err := repair(context.WithoutCancel(ctx)) // the database is replaced: finish the repair
	if err != nil {
		return api.DBRestore{}, fmt.Errorf("restored from %s, but: %w", path, err)
	}
	v, _, err := s.Store.SchemaVersion(ctx)
	if err != nil {
		return api.DBRestore{}, err
	}
	return api.DBRestore{Path: path, SchemaVersion: int(v), AdminTokenRenewed: renewed, AdminTokenFile: file}, nil
}

// Reset empties the database, keeping its schema, once given the word
// api.ResetConfirmation, then recreates the admin user and token.
func (s *Service) Reset(ctx context.Context, confirmation string, repair AdminRepair) (api.DBReset, error) {
	if confirmation != api.ResetConfirmation {
		return api.DBReset{}, refuse(ErrInvalid, "confirmation: pass %q to delete every job, client, user and rule", api.ResetConfirmation)
	}
	if err := s.Store.Reset(ctx); err != nil {
		return api.DBReset{}, err
	}
	s.invalidate()
	_, file, err := repair(context.WithoutCancel(ctx))
	if err != nil {
		return api.DBReset{}, fmt.Errorf("reset, but: %w", err)
	}
	v, _, err := s.Store.SchemaVersion(ctx)
	if err != nil {
		return api.DBReset{}, err
	}
	return api.DBReset{SchemaVersion: int(v), AdminTokenFile: file}, nil
}

// SchemaVersion is the database's migration version, the newest the
// driver knows, and whether a migration stopped half-way.
func (s *Service) SchemaVersion(ctx context.Context) (api.DBVersion, error) {
	v, dirty, err := s.Store.SchemaVersion(ctx)
	if err != nil {
		return api.DBVersion{}, err
	}
	return api.DBVersion{Version: int(v), Latest: int(s.Store.LatestVersion()), Dirty: dirty}, nil
}
