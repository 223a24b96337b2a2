package commands

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/datadir"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/sqlite"
	"github.com/scirectl/scirectl/internal/lockfile"
	"github.com/scirectl/scirectl/service"
)

// liveHeartbeat is how recent a server's heartbeat must be for --offline
// to take it for running (servers beat every 10s).
const liveHeartbeat = 30 * time.Second

// NewDBCmd builds `scirectl db`.
func NewDBCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Back up, restore, reset and migrate the server's database",
		Long: `Database maintenance. Each of these is a modifier at the server's gate: it
waits until nothing else runs, and nothing else starts until it is done (add
--no-wait to fail at once with exit code 18 instead of waiting). Each needs
the admin permission db.admin, which the built-in admin holds.

By default the commands go through the running server, and FILE is a path on
the SERVER host: it is made absolute here (against this shell's working
directory) and the server reads or writes it with its own permissions.

With --offline they open the database directly (--db, else
sqlite://<data-dir>/scire.db), for when the server is down. They refuse
(exit code 16) while a server runs on a SQLite database (it holds the lock
file DATABASE.lock, and the message names its pid), and while a server
registered in the database has sent a heartbeat in the last 30 seconds,
naming it; --force overrides only the heartbeat check, when you know the
server is gone (killed, or stopped less than 30 seconds ago). While an
--offline command works on a SQLite database, no server starts on it.

  db backup FILE     consistent copy of the whole database, taken online
  db restore FILE    replace everything with a backup, atomically
  db reset --yes     delete everything; only the admin user remains
  db migrate         schema version (--offline: apply pending migrations)`,
		Example: `  # nightly backup, through the server, into a file on the server host
  scirectl db backup /var/backups/scire/$(date +%F).db

  # put it back
  scirectl db restore /var/backups/scire/2026-11-22.db

  # with the server stopped
  scirectl db restore --offline --data-dir /var/lib/scire /var/backups/scire/2026-11-22.db`,
	}
	cmd.AddCommand(newDBBackupCmd(f), newDBRestoreCmd(f), newDBResetCmd(f), newDBMigrateCmd(f))
	return cmd
}

// dbOptions are the flags every db command shares: the connection and -o
// for the server, and the --offline mode.
type dbOptions struct {
	remote
	offline bool
	force   bool
	dbURL   string
	lock    *lockfile.Lock // the SQLite database's lock while an --offline command works on it
}

func (o *dbOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&o.offline, "offline", false, "open the database directly instead of going through the server (for when it is down)")
	f.BoolVar(&o.force, "force", false, "with --offline: go on even though a server sent a heartbeat in the last 30s")
	f.StringVar(&o.dbURL, "db", "", "with --offline: database URL (default sqlite://<data-dir>/scire.db)")
	o.remote.addFlags(cmd)
}

// validate refuses the offline-only flags without --offline.
func (o *dbOptions) validate(cmd *cobra.Command) error {
	if !o.offline {
		for _, name := range []string{"force", "db"} {
			if cmd.Flags().Changed(name) {
				return usageError(fmt.Sprintf("--%s only applies with --offline", name))
			}
		}
	}
	return o.out.validate()
}

func (o *dbOptions) dataDir() string { return o.conn.dataDir() }

func (o *dbOptions) url() string {
	if o.dbURL != "" {
		return o.dbURL
	}
	return "sqlite://" + datadir.Paths{Dir: o.dataDir()}.DB()
}

// open opens the database for an --offline command ("db restore"), after
// making sure no server is using it. A SQLite database is locked first
// (datadir.LockDatabase): a server running on it refuses the command, and
// no server starts on it until the command is done (unlock); --force does
// not override that, the lock being proof that the server runs. The file
// is then inspected read-only, because opening a store migrates it:
// nothing is changed while a server may run. mustExist refuses a database
// file that is not there yet.
func (o *dbOptions) open(ctx context.Context, ios *IOStreams, command string, mustExist bool) (_ db.Store, err error) {
	u := o.url()
	if strings.HasPrefix(u, "sqlite:") {
		// A database that must exist and whose directory does not is
		// reported missing below, and no directory is made for it.
		if o.lock, err = lockDatabase(u, "scirectl "+command+" --offline", !mustExist,
			"the server is running: run the command without --offline to go through it, or stop the server first"); err != nil &&
			!(mustExist && errors.Is(err, fs.ErrNotExist)) {
			return nil, err
		}
		defer func() {
			if err != nil {
				o.unlock()
			}
		}()
		in, err := sqlite.Inspect(ctx, u)
		if err != nil {
			return nil, err
		}
		if !in.Exists && mustExist {
			return nil, &exitError{code: ExitNotFound, msg: fmt.Sprintf("no database at %s (wrong --data-dir or --db?)", db.Redact(u))}
		}
		if in.Version > sqlite.LatestVersion {
			return nil, &exitError{code: ExitConflict, msg: fmt.Sprintf("the database is at schema version %d, newer than this scirectl knows (%d): use a newer scirectl",
				in.Version, sqlite.LatestVersion)}
		}
		if err := o.guard(ios, in.Servers); err != nil {
			return nil, err
		}
		return db.Open(ctx, u)
	}
	s, err := db.Open(ctx, u)
	if err != nil {
		return nil, err
	}
	servers, err := s.ListServers(ctx)
	if err == nil {
		err = o.guard(ios, servers)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// unlock releases what open locked.
func (o *dbOptions) unlock() {
	o.lock.Release()
	o.lock = nil
}

// lockDatabase takes a SQLite database's lock for a command that writes
// it behind the server's back. Held by a server, it is refused with exit
// code 16 and serveHint; held by another command, with "wait for it to
// finish". Where the system has no file locks, it goes on without.
func lockDatabase(dbURL, who string, create bool, serveHint string) (*lockfile.Lock, error) {
	l, err := datadir.LockDatabase(dbURL, who, create)
	var he *lockfile.HeldError
	switch {
	case errors.Is(err, lockfile.ErrUnsupported):
		return nil, nil
	case errors.As(err, &he):
		hint := "wait for it to finish"
		if he.Who == "scirectl serve" {
			hint = serveHint
		}
		return nil, &exitError{code: ExitConflict, msg: datadir.HeldByOther(err, hint).Error()}
	}
	return l, err
}

// guard refuses while a registered server has a recent heartbeat.
func (o *dbOptions) guard(ios *IOStreams, servers []db.ServerInfo) error {
	now := time.Now()
	for _, si := range servers {
		age := now.Sub(si.HeartbeatAt)
		if age >= liveHeartbeat {
			continue
		}
		who := fmt.Sprintf("server %d (%s on %s, started %s)", si.ID, si.Address, dash(si.Hostname), si.StartedAt.Local().Format(time.DateTime))
		if o.force {
			fmt.Fprintf(ios.ErrOut, "warning: %s sent a heartbeat %s ago; going on because of --force\n", who, short(max(age, 0)))
			continue
		}
		return &exitError{code: ExitConflict, msg: fmt.Sprintf(
			"%s sent a heartbeat %s ago and may still be using this database: run the command without --offline to go through it, "+
				"or stop it and retry in %s; --force goes on anyway (only when you know it is gone)",
			who, short(max(age, 0)), short(liveHeartbeat-age+time.Second))}
	}
	return nil
}

// offlineError gives the store's error kinds the exit codes of the faults
// the server would have answered.
func offlineError(err error) error {
	var ee *exitError
	switch {
	case err == nil, errors.As(err, &ee):
		return err
	case errors.Is(err, db.ErrNotFound):
		return &exitError{code: ExitNotFound, msg: err.Error()}
	case errors.Is(err, db.ErrConflict):
		return &exitError{code: ExitConflict, msg: err.Error()}
	case errors.Is(err, db.ErrInvalid):
		return &exitError{code: ExitBadRequest, msg: err.Error()}
	}
	return err
}

// dbServerDown adds a hint when the server could not be reached at all.
func dbServerDown(err error) error {
	if err != nil && api.FaultCode(err) == 0 && strings.Contains(err.Error(), "connect") {
		return fmt.Errorf("%w\n(is the server down? --offline works on the database in --data-dir directly)", err)
	}
	return err
}

// absFile makes FILE absolute: the server cannot know this shell's
// working directory.
func absFile(arg string) (string, error) {
	if arg == "" {
		return "", usageError("FILE: empty")
	}
	p, err := filepath.Abs(arg)
	if err != nil {
		return "", usageError(fmt.Sprintf("FILE %q: %v", arg, err))
	}
	return p, nil
}

func newDBBackupCmd(f *Factory) *cobra.Command {
	ios := f.IOStreams
	o := dbOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Copy the whole database into a new file",
		Long: `Write a consistent copy of the whole database — jobs, runs, clients, users,
token hashes, groups, rules, the audit trail — into FILE, a new file on the
SERVER host. The copy is taken online: agents and operators wait only while
it is written, and it is one point in time however busy the server is. It is
compacted, created with mode 0600 (it holds token hashes), and synced to disk
before the command succeeds.

FILE must not exist (exit code 16: a backup never overwrites anything), and
its directory must (exit code 14). "db restore" takes the file back; with
SQLite it is also a plain database file that "scirectl serve --db
sqlite://FILE" can run on.`,
		Example: `  scirectl db backup /var/backups/scire/$(date +%F).db
  scirectl db backup -o json /var/backups/scire/now.db | jq .bytes
  scirectl db backup --offline --data-dir /var/lib/scire /root/scire.db`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(cmd); err != nil {
				return err
			}
			path, err := absFile(args[0])
			if err != nil {
				return err
			}
			var res api.DBBackup
			if o.offline {
				res, err = offlineBackup(cmd.Context(), ios, &o, path)
				err = offlineError(err)
			} else {
				res, err = call[api.DBBackup](cmd.Context(), &o.remote, api.MethodDBBackup, path)
				err = dbServerDown(err)
			}
			if err != nil {
				return err
			}
			return show(ios, &o.remote, res, func(res api.DBBackup) error {
				fmt.Fprintf(ios.Out, "backed up the database to %s (%s, in %s)\n", res.Path, humanBytes(res.Bytes),
					time.Duration(res.DurationMS)*time.Millisecond)
				return nil
			})
		},
	}
	o.addFlags(cmd)
	return cmd
}

func offlineBackup(ctx context.Context, ios *IOStreams, o *dbOptions, path string) (api.DBBackup, error) {
	s, err := o.open(ctx, ios, "db backup", true)
	if err != nil {
		return api.DBBackup{}, err
	}
	defer o.unlock()
	defer s.Close()
	return (&service.Service{Store: s}).Backup(ctx, path)
}

func newDBRestoreCmd(f *Factory) *cobra.Command {
	ios := f.IOStreams
	o := dbOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the whole database with a backup",
		Long: `Replace the entire contents of the database with those of FILE, a file "db
backup" wrote, on the SERVER host. It is atomic: afterwards the database holds
exactly what the backup holds, or, on any error, exactly what it held before.
Everything made since the backup is gone: jobs, runs, clients, users, rules,
audit entries.

Users, tokens and rules become those of the backup: a token created since
the backup stops working, and one revoked since works again — revoke it
again. The admin token file (<data-dir>/admin.token) is kept when the backup
knows its token, and rewritten with a fresh token otherwise.

The backup must have the database's schema version. One made by another
version of scirectl is refused (exit code 10) with both versions: restore it
with that version, or migrate a copy of it first ("scirectl db migrate
--offline --db sqlite://COPY" with the newer binary). A file that is not a
scirectl backup is refused the same way; a missing one exits with 14.`,
		Example: `  scirectl db restore /var/backups/scire/2026-11-22.db
  scirectl db restore --offline --data-dir /var/lib/scire /var/backups/scire/2026-11-22.db`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(cmd); err != nil {
				return err
			}
			path, err := absFile(args[0])
			if err != nil {
				return err
			}
			var res api.DBRestore
			if o.offline {
				res, err = offlineRestore(cmd.Context(), ios, &o, path)
				err = offlineError(err)
			} else {
				res, err = call[api.DBRestore](cmd.Context(), &o.remote, api.MethodDBRestore, path)
				err = dbServerDown(err)
			}
			if err != nil {
				return err
			}
			return show(ios, &o.remote, res, func(res api.DBRestore) error {
				fmt.Fprintf(ios.Out, "restored the database from %s (schema version %d)\n", res.Path, res.SchemaVersion)
				if res.AdminTokenRenewed {
					fmt.Fprintf(ios.Out, "the backup did not know the admin token: a new one is in %s\n", res.AdminTokenFile)
				}
				return nil
			})
		},
	}
	o.addFlags(cmd)
	return cmd
}

func offlineRestore(ctx context.Context, ios *IOStreams, o *dbOptions, path string) (api.DBRestore, error) {
	s, err := o.open(ctx, ios, "db restore", false)
	if err != nil {
		return api.DBRestore{}, err
	}
	defer o.unlock()
	defer s.Close()
	return (&service.Service{Store: s}).Restore(ctx, path, adminRepair(s, o.dataDir()))
}

// adminRepair recreates the admin user and the admin token file in dataDir
// when the database does not know them (service.AdminRepair).
func adminRepair(s db.Store, dataDir string) service.AdminRepair {
	return func(ctx context.Context) (bool, string, error) {
		p := datadir.Paths{Dir: dataDir}
		if err := os.MkdirAll(p.Dir, 0o700); err != nil {
			return false, "", err
		}
		before, _ := os.ReadFile(p.AdminToken())
		if err := datadir.EnsureAdmin(ctx, s, p); err != nil {
			return false, "", fmt.Errorf("admin token: %w", err)
		}
		after, _ := os.ReadFile(p.AdminToken())
		return !bytes.Equal(before, after), p.AdminToken(), nil
	}
}

func newDBResetCmd(f *Factory) *cobra.Command {
	ios := f.IOStreams
	o := dbOptions{remote: newRemote(f)}
	var yes bool
	cmd := &cobra.Command{
		Use:   "reset --yes",
		Short: "Delete everything in the database",
		Long: `Delete every job, run, client, user, token, group, ACL rule and audit entry,
keeping the schema: the database is as on the first start. Only the built-in
admin user remains, with a fresh token written to the admin token file
(<data-dir>/admin.token on the server host); every other token stops working.
Agents must register again and be accepted.

There is no undo but a backup: run "db backup" first. --yes is required.`,
		Example: `  scirectl db backup /var/backups/scire/before-reset.db && scirectl db reset --yes
  scirectl db reset --yes --offline --data-dir /var/lib/scire`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(cmd); err != nil {
				return err
			}
			if !yes {
				return usageError(`db reset deletes every job, run, client, user, token, group, rule and audit entry; ` +
					`only the admin user remains, with a new token. Run "scirectl db backup FILE" first, then repeat with --yes`)
			}
			var res api.DBReset
			var err error
			if o.offline {
				res, err = offlineReset(cmd.Context(), ios, &o)
				err = offlineError(err)
			} else {
				res, err = call[api.DBReset](cmd.Context(), &o.remote, api.MethodDBReset, api.ResetConfirmation)
				err = dbServerDown(err)
			}
			if err != nil {
				return err
			}
			return show(ios, &o.remote, res, func(res api.DBReset) error {
				fmt.Fprintf(ios.Out, "reset the database: everything is deleted; the admin token is now the one in %s\n", res.AdminTokenFile)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "really delete everything")
	o.addFlags(cmd)
	return cmd
}

func offlineReset(ctx context.Context, ios *IOStreams, o *dbOptions) (api.DBReset, error) {
	s, err := o.open(ctx, ios, "db reset", true)
	if err != nil {
		return api.DBReset{}, err
	}
	defer o.unlock()
	defer s.Close()
	return (&service.Service{Store: s}).Reset(ctx, api.ResetConfirmation, adminRepair(s, o.dataDir()))
}

// migrateResult is db migrate's answer; Before is the version found
// before an --offline migration.
type migrateResult struct {
	api.DBVersion
	Before *int `json:"before,omitempty"`
}

func newDBMigrateCmd(f *Factory) *cobra.Command {
	ios := f.IOStreams
	o := dbOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Show the schema version, or bring it up to date offline",
		Long: `Through the server, print the database's schema version, the newest this
scirectl knows, and whether a migration failed half-way (dirty). The server
migrates its database when it starts, so this only reports.

With --offline, open the database directly and apply every migration it
lacks, printing the version before and after: the step to take with a newer
scirectl before starting it, or to bring a backup of an older version up to
date (--db sqlite://FILE) so that "db restore" takes it.`,
		Example: `  scirectl db migrate
  scirectl db migrate --offline --data-dir /var/lib/scire
  cp old-backup.db /tmp/copy.db && scirectl db migrate --offline --db sqlite:///tmp/copy.db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(cmd); err != nil {
				return err
			}
			var res migrateResult
			var err error
			if o.offline {
				res, err = offlineMigrate(cmd.Context(), ios, &o)
				err = offlineError(err)
			} else {
				res.DBVersion, err = call[api.DBVersion](cmd.Context(), &o.remote, api.MethodDBMigrate)
				err = dbServerDown(err)
			}
			if err != nil {
				return err
			}
			return show(ios, &o.remote, res, func(res migrateResult) error {
				if res.Before != nil && *res.Before != res.Version {
					fmt.Fprintf(ios.Out, "migrated the database from schema version %d to %d\n", *res.Before, res.Version)
				}
				state := "up to date"
				switch {
				case res.Dirty:
					state = "DIRTY: a migration failed half-way; restore a backup"
				case res.Version < res.Latest:
					state = fmt.Sprintf("behind: run \"scirectl db migrate --offline\" to reach %d", res.Latest)
				case res.Version > res.Latest:
					state = "newer than this scirectl knows"
				}
				fmt.Fprintf(ios.Out, "schema version %d, latest %d: %s\n", res.Version, res.Latest, state)
				return nil
			})
		},
	}
	o.addFlags(cmd)
	return cmd
}

func offlineMigrate(ctx context.Context, ios *IOStreams, o *dbOptions) (migrateResult, error) {
	var res migrateResult
	u := o.url()
	if strings.HasPrefix(u, "sqlite:") {
		in, err := sqlite.Inspect(ctx, u)
		if err != nil {
			return res, err
		}
		before := int(in.Version)
		res.Before = &before
	}
	s, err := o.open(ctx, ios, "db migrate", true)
	if err != nil {
		return res, err
	}
	defer o.unlock()
	defer s.Close()
	v, dirty, err := s.SchemaVersion(ctx)
	if err != nil {
		return res, err
	}
	res.Version, res.Latest, res.Dirty = int(v), int(s.LatestVersion()), dirty
	return res, nil
}

// humanBytes renders a size for people: "1.5 MiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
