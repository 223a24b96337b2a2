package commands

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/datadir"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/maintenance"
)

// RecoverOptions are the flags of `scirectl recover`.
type RecoverOptions struct {
	DataDir  string
	DB       string
	ServerID int64
	DryRun   bool
	Force    bool
	Grace    time.Duration
	out      outputOptions
}

// NewRecoverCmd builds `scirectl recover`.
func NewRecoverCmd(ios *IOStreams) *cobra.Command {
	o := &RecoverOptions{}
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Hand back what a dead daemon had in flight",
		Long: `Recover by hand, straight on the database, what a daemon that died left in
flight: the runs it had sent that no agent acknowledged go back to the queue
at once (or fail with "max attempts"), whatever their lease. Runs an agent
acknowledged stay: the agent holds them and reports to any daemon. Then the
rescuer's sweep is applied too: expired leases, lost runs, passed expiry dates.

Without --server, every daemon whose heartbeat is older than 30 seconds is
recovered; with --server ID only that one, and only if it is dead (--force to
go on anyway). A running daemon does this by itself at start and on a
schedule; "recover" is for when none runs, or to act at once. On PostgreSQL
it works whether or not other daemons run, taking the cluster-wide gate as a
modifier while it works. On SQLite it refuses (exit code 16) while a server
runs on the database, which recovers by itself (--dry-run still looks), and
no server starts on it until recover is done.

--dry-run shows what would change and changes nothing.`,
		Example: `  scirectl recover --dry-run
  scirectl recover --server 3
  scirectl recover --db postgres://scire@db1/scire -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.out.validate(); err != nil {
				return err
			}
			return runRecover(cmd.Context(), ios, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", "", "data directory of the database (default $SCIRE_DATA_DIR, else ./scire-data)")
	f.StringVar(&o.DB, "db", "", "database URL (default sqlite://<data-dir>/scire.db)")
	f.Int64Var(&o.ServerID, "server", 0, "recover only this daemon (an id from the servers registry)")
	f.BoolVar(&o.DryRun, "dry-run", false, "show what would change, change nothing")
	f.BoolVar(&o.Force, "force", false, "recover --server ID even though it sent a heartbeat in the last 30s")
	f.DurationVar(&o.Grace, "lost-grace", 2*time.Minute, "grace added to a job's timeout before a silent run is lost")
	addOutputFlag(cmd, &o.out)
	return cmd
}

// RecoverResult is what recover prints with -o json.
type RecoverResult struct {
	DryRun  bool           `json:"dry_run"`
	Servers []string       `json:"servers"` // daemons whose in-flight runs were handed back
	Changes []RecoveredRun `json:"changes"`
	Summary string         `json:"summary"`
}

// RecoveredRun is one run recover changed (or would change).
type RecoveredRun struct {
	RunID    string `json:"run_id"`
	JobID    string `json:"job_id"`
	ClientID string `json:"client_id"`
	SentBy   string `json:"sent_by,omitempty"`
	From     string `json:"from"`
	To       string `json:"to"`
	Reason   string `json:"reason,omitempty"`
	Attempts int    `json:"attempts"`
}

func runRecover(ctx context.Context, ios *IOStreams, o *RecoverOptions) error {
	url := o.DB
	if url == "" {
		url = "sqlite://" + datadir.Paths{Dir: defaultDataDir(o.DataDir)}.DB()
	}
	// On SQLite, a running server recovers by itself and its gate must
	// not be bypassed: hold the database's lock while writing (lock.go in
	// package server). A dry run writes nothing and needs no lock.
	if strings.HasPrefix(url, "sqlite:") && !o.DryRun {
		lock, err := lockDatabase(url, "scirectl recover", true,
			"a running server recovers by itself, at start and every few seconds: stop it first, or look with --dry-run")
		if err != nil {
			return err
		}
		defer lock.Release()
	}
	store, err := db.Open(ctx, url)
	if err != nil {
		return err
	}
	defer store.Close()
	if cl := store.ClusterLock(); cl != nil {
		unlock, err := cl.Lock(ctx, gate.Modifier, false)
		if err != nil {
			return fmt.Errorf("take the cluster-wide gate: %w", err)
		}
		defer unlock()
	}
	servers, err := store.ListServers(ctx)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	var targets []db.ServerInfo
	for _, si := range servers {
		alive := now.Sub(si.HeartbeatAt) < liveHeartbeat
		switch {
		case o.ServerID != 0 && si.ID == o.ServerID:
			if alive && !o.Force {
				return &exitError{code: ExitConflict, msg: fmt.Sprintf("server %d (%s) sent a heartbeat %s ago: it is alive and recovers by itself; --force to go on",
					si.ID, si.Address, short(max(now.Sub(si.HeartbeatAt), 0)))}
			}
			targets = append(targets, si)
		case o.ServerID == 0 && !alive:
			targets = append(targets, si)
		}
	}
	if o.ServerID != 0 && len(targets) == 0 {
		return &exitError{code: ExitNotFound, msg: fmt.Sprintf("no server %d in the registry", o.ServerID)}
	}
	res := RecoverResult{DryRun: o.DryRun, Servers: []string{}, Changes: []RecoveredRun{}}
	var all []db.Change
	for _, si := range targets {
		ch, err := store.RequeueServer(ctx, si.ID, now, o.DryRun)
		if err != nil {
			return fmt.Errorf("recover server %d: %w", si.ID, err)
		}
		res.Servers = append(res.Servers, strconv.FormatInt(si.ID, 10))
		all = append(all, ch...)
	}
	ch, err := store.Sweep(ctx, db.SweepOptions{At: now, Grace: o.Grace, DryRun: o.DryRun})
	if err != nil {
		return err
	}
	all = append(all, ch...)
	slices.SortFunc(all, func(a, b db.Change) int { return int(a.RunID - b.RunID) })
	for _, c := range all {
		r := RecoveredRun{RunID: strconv.FormatInt(c.RunID, 10), JobID: strconv.FormatInt(c.JobID, 10),
			ClientID: strconv.FormatInt(c.ClientID, 10), From: string(c.From), To: string(c.To), Reason: c.Reason, Attempts: c.Attempts}
		if c.ServerID != 0 {
			r.SentBy = strconv.FormatInt(c.ServerID, 10)
		}
		res.Changes = append(res.Changes, r)
	}
	res.Summary = maintenance.Summary(all)
	if o.out.json() {
		return printJSON(ios.Out, res)
	}
	rows := make([][]string, len(res.Changes))
	for i, r := range res.Changes {
		rows[i] = []string{r.RunID, r.JobID, r.ClientID, dash(r.SentBy), r.From, r.To, dash(r.Reason), strconv.Itoa(r.Attempts)}
	}
	if len(rows) > 0 {
		if err := printTable(ios.Out, &o.out, []string{"RUN", "JOB", "CLIENT", "SENT BY", "FROM", "TO", "REASON", "ATTEMPTS"}, rows); err != nil {
			return err
		}
	}
	verb := "recovered"
	if o.DryRun {
		verb = "would recover"
	}
	fmt.Fprintf(ios.ErrOut, "%s: %s (servers: %s)\n", verb, res.Summary, dash(fmt.Sprint(len(res.Servers))))
	return nil
}
