package sqlite

import (
	"database/sql"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
	"strconv"

	"github.com/scirectl/scirectl/runstate"
)

// The statements of the dispatch cycle (claim, ack, report) and of group
// commit run thousands of times a second. SQLite compiles a statement on
// every prepare, and compiling cost a third of the writer's time when each
// call prepared its own (docs/benchmarks.md). They are therefore prepared
// once, on the writer's single connection, when the store opens, and each
// transaction binds them with tx.StmtContext, which reuses the compiled
// statement of the connection it runs on.
//
// The dispatch statements are set-based: one statement moves a whole batch
// of runs (the ids, or the reports, travel as one JSON array bound to a
// single parameter and read with json_each), so a batch of 100 costs one
// statement execution instead of 100.

// hotStatements holds the prepared statements; see newHotStatements.
type hotStatements struct {
	pending    *sql.Stmt // a client's due pending runs with their jobs, best first
	send       *sql.Stmt // pending → sent, for a JSON array of run ids
	sendOne    *sql.Stmt // the same for one run: cheaper than the JSON join
	ack        *sql.Stmt // sent → received, for a JSON array of the caller's run ids
	ackOne     *sql.Stmt // the same for one run
	batchEvent *sql.Stmt // one row holding a batch's events (dbcore.BatchEvent)
	runEvent   *sql.Stmt // one run's event
	ackEvents  *sql.Stmt // run.received of an ack's runs, in one row
	ackEvent   *sql.Stmt // the same for one run, in a row of its own
	finished   *sql.Stmt // job.finished of the jobs whose runs all ended, in one row
	start      *sql.Stmt // reports of running, JSON array of reports; RETURNING the runs moved
	finish     *sql.Stmt // reports of succeeded/failed, likewise
	startOne   *sql.Stmt // one running report: for a few reports, cheaper than the JSON join
	finishOne  *sql.Stmt // one final report
	savepoint  *sql.Stmt
	release    *sql.Stmt
	rollback   *sql.Stmt // ROLLBACK TO the savepoint
	changes    *sql.Stmt // rows changed on the writer's connection so far (idlemarks.go)
}

// The SQL of the hot statements. Source states come from package runstate,
// the one state machine; db.StateIn renders them (constants, never input).
var (
	pendingSQL = writeStatement(`
		SELECT ` + dbcore.PendingCols + `
		FROM runs r JOIN jobs j ON j.id = r.job_id
		WHERE r.client_id = ? AND r.state = 'pending' AND (r.not_before IS NULL OR r.not_before <= ?)
		ORDER BY r.priority DESC, r.id
		LIMIT ?`)
	// pendingExceptSQL is pendingSQL without the runs of a JSON array
	// (?4): those a claim left pending (ClaimRuns).
	pendingExceptSQL = writeStatement(`
		SELECT ` + dbcore.PendingCols + `
		FROM runs r JOIN jobs j ON j.id = r.job_id
		WHERE r.client_id = ?1 AND r.state = 'pending' AND (r.not_before IS NULL OR r.not_before <= ?2)
		  AND r.id NOT IN (SELECT value FROM json_each(?4))
		ORDER BY r.priority DESC, r.id
		LIMIT ?3`)
	// hasDueSQL says whether pendingSQL would find a run, on the read pool
	// (ClaimRuns), and when none would, the earliest not_before of the
	// client's pending runs (NULL when it has none: an idle client reads
	// the runs_dispatch partial index only).
	hasDueSQL = `SELECT EXISTS (SELECT 1 FROM runs r
		WHERE r.client_id = ?1 AND r.state = 'pending' AND (r.not_before IS NULL OR r.not_before <= ?2)),
		(SELECT min(r.not_before) FROM runs r WHERE r.client_id = ?1 AND r.state = 'pending' AND r.not_before > ?2)`
	sendSQL = writeStatement(`UPDATE runs SET state = '` + string(dbcore.Target(runstate.Dispatch)) + `', attempts = attempts + 1, sent_at = ?1,
		lease_until = ?2, server_id = ?3, acked_at = NULL, updated_at = ?1
		WHERE id IN (SELECT value FROM json_each(?4)) AND ` + db.StateIn("state", runstate.Dispatch))
	sendOneSQL = writeStatement(`UPDATE runs SET state = '` + string(dbcore.Target(runstate.Dispatch)) + `', attempts = attempts + 1, sent_at = ?1,
		lease_until = ?2, server_id = ?3, acked_at = NULL, updated_at = ?1
		WHERE id = ?4 AND ` + db.StateIn("state", runstate.Dispatch))
	ackOneSQL = writeStatement(`UPDATE runs SET state = '` + string(dbcore.Target(runstate.Ack)) + `', acked_at = ?1, updated_at = ?1
		WHERE id = ?2 AND client_id = ?3 AND ` + db.StateIn("state", runstate.Ack))
	ackSQL = writeStatement(`UPDATE runs SET state = '` + string(dbcore.Target(runstate.Ack)) + `', acked_at = ?1, updated_at = ?1
		WHERE id IN (SELECT value FROM json_each(?2)) AND client_id = ?3 AND ` + db.StateIn("state", runstate.Ack))
	// The run events of the dispatch statements (migration 12): a batch's
	// in one row of span events, which take the span ids up to the row's
	// (AUTOINCREMENT's sequence holds the last id ever given; the single
	// writer makes the read and the insert one step), its events in batch
	// (dbcore.BatchEvent). The trigger leaves run.sent and run.received to
	// these statements, and the runs whose own_events a statement bumped.
	// batchEventSQL: ?1 type, ?2 now, ?3 client (or NULL), ?4 span, ?5 batch.
	batchEventSQL = writeStatement(`INSERT INTO events (id, type, at, client_id, span, batch)
		SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0) + ?4, ?1, ?2, ?3, ?4, ?5`)
	// One run's event: ?1 type, ?2 now, ?3 client, ?4 job, ?5 run.
	runEventSQL = writeStatement(`INSERT INTO events (type, at, job_id, run_id, client_id, detail) VALUES (?1, ?2, ?4, ?5, ?3, '')`)
	// run.received: ?1 now, ?2 the run ids, ?3 the client; the runs the
	// acknowledgement moved are those it stamped with its time.
	ackEventsSQL = writeStatement(`INSERT INTO events (id, type, at, client_id, span, batch)
		SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0) + n, 'run.received', ?1, ?3, n, b
		FROM (SELECT count(*) AS n, json_group_array(json_object('r', r.id, 'j', r.job_id)) AS b
			FROM json_each(?2) AS i CROSS JOIN runs AS r
			WHERE r.id = i.value AND r.client_id = ?3 AND r.state = 'received' AND r.acked_at = ?1)
		WHERE n > 0`)
	ackEventSQL = writeStatement(`INSERT INTO events (type, at, job_id, run_id, client_id, detail)
		SELECT 'run.received', ?1, job_id, id, client_id, '' FROM runs
		WHERE id = ?2 AND client_id = ?3 AND state = 'received' AND acked_at = ?1`)
	// job.finished for the jobs among ?2 (a JSON array of distinct job
	// ids, in order) whose runs have all ended, at ?1.
	finishedEventsSQL = writeStatement(`INSERT INTO events (id, type, at, client_id, span, batch)
		SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0) + n, 'job.finished', ?1, NULL, n, b
		FROM (SELECT count(*) AS n, json_group_array(json_object('j', value)) AS b
			FROM json_each(?2) WHERE NOT EXISTS (SELECT 1 FROM runs WHERE job_id = value AND finished_at IS NULL))
		WHERE n > 0`)
	// A report is {"id", "state", "exit", "reason", "started", "finished",
	// "output", "truncated"}; absent times are null. ?1 is now.
	reportRowsSQL = `(SELECT value->>'id' AS id, value->>'state' AS state, value->>'exit' AS exit_code,
		value->>'reason' AS reason, value->>'started' AS started, value->>'finished' AS finished,
		value->>'output' AS output, value->>'truncated' AS truncated FROM jsonb_each(?2)) AS j`
	startSQL = writeStatement(`UPDATE runs SET state = j.state, started_at = COALESCE(j.started, runs.started_at, ?1),
		acked_at = COALESCE(runs.acked_at, ?1), updated_at = ?1, own_events = runs.own_events + 1
		FROM ` + reportRowsSQL + `
		WHERE runs.id = j.id AND runs.client_id = ?3 AND ` + db.StateIn("runs.state", runstate.Start) + ` RETURNING ` + reportedCols)
	finishSQL = writeStatement(`UPDATE runs SET state = j.state, exit_code = j.exit_code, reason = j.reason,
		started_at = COALESCE(j.started, runs.started_at), finished_at = COALESCE(j.finished, ?1),
		acked_at = COALESCE(runs.acked_at, ?1), output = j.output, output_truncated = j.truncated, updated_at = ?1,
		own_events = runs.own_events + 1
		FROM ` + reportRowsSQL + `
		WHERE runs.id = j.id AND runs.client_id = ?3 AND ` + finishFrom() + ` RETURNING ` + reportedCols)
	// reportedCols are what the set-based reports return of each run they
	// moved: what its event needs (they write their runs' events).
	reportedCols = `runs.id, runs.job_id, runs.state, runs.exit_code, runs.reason`
)

// The one-run report statements. ?1 now, ?2 run, ?3 client, then the report.
var (
	startOneSQL = writeStatement(`UPDATE runs SET state = '` + string(dbcore.Target(runstate.Start)) + `', started_at = COALESCE(?4, started_at, ?1),
		acked_at = COALESCE(acked_at, ?1), updated_at = ?1
		WHERE id = ?2 AND client_id = ?3 AND ` + db.StateIn("state", runstate.Start))
	finishOneSQL = writeStatement(`UPDATE runs SET state = ?4, exit_code = ?5, reason = ?6, started_at = COALESCE(?7, started_at),
		finished_at = COALESCE(?8, ?1), acked_at = COALESCE(acked_at, ?1), output = ?9, output_truncated = ?10, updated_at = ?1
		WHERE id = ?2 AND client_id = ?3 AND ` + finishFrom())
)

// finishFrom is the source-state condition shared by succeed and fail; the
// statement serves both only while runstate gives them the same sources.
func finishFrom() string {
	s, f := db.StateIn("runs.state", runstate.Succeed), db.StateIn("runs.state", runstate.Fail)
	if s != f {
		panic("sqlite: succeed and fail have different source states; split finishSQL")
	}
	return s
}

// The group-commit savepoint statements.
var (
	savepointSQL = writeStatement(`SAVEPOINT g`)
	releaseSQL   = writeStatement(`RELEASE g`)
	rollbackSQL  = writeStatement(`ROLLBACK TO g`)
	changesSQL   = writeStatement(`SELECT total_changes()`)
)

// newHotStatements names the hot statements among those the writer's cache
// prepared at open (they are declared with writeStatement, like the rest).
func newHotStatements(wc *stmtCache) *hotStatements {
	return &hotStatements{
		pending: wc.m[pendingSQL], send: wc.m[sendSQL], sendOne: wc.m[sendOneSQL], ack: wc.m[ackSQL], ackOne: wc.m[ackOneSQL],
		batchEvent: wc.m[batchEventSQL], runEvent: wc.m[runEventSQL], ackEvents: wc.m[ackEventsSQL], ackEvent: wc.m[ackEventSQL], finished: wc.m[finishedEventsSQL],
		start: wc.m[startSQL], finish: wc.m[finishSQL], startOne: wc.m[startOneSQL], finishOne: wc.m[finishOneSQL],
		savepoint: wc.m[savepointSQL], release: wc.m[releaseSQL], rollback: wc.m[rollbackSQL], changes: wc.m[changesSQL],
	}
}

// idArray renders ids as a JSON array for json_each.
func idArray(ids []int64) string {
	b := make([]byte, 0, 2+len(ids)*8)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}
