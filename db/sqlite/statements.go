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
	sentEvents *sql.Stmt // run.sent events for a JSON array of [run, job] pairs
	sentEvent  *sql.Stmt // the same for one run
	ackEvents  *sql.Stmt // run.received events of an ack's runs, for a JSON array of run ids
	ackEvent   *sql.Stmt // the same for one run
	start      *sql.Stmt // reports of running, JSON array of reports; RETURNING the ids moved
	finish     *sql.Stmt // reports of succeeded/failed, likewise
	startOne   *sql.Stmt // one running report: for a few reports, cheaper than the JSON join
	finishOne  *sql.Stmt // one final report
	savepoint  *sql.Stmt
	release    *sql.Stmt
	rollback   *sql.Stmt // ROLLBACK TO the savepoint
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
	// (ClaimRuns); it reads the runs_dispatch partial index only.
	hasDueSQL = `SELECT EXISTS (SELECT 1 FROM runs r
		WHERE r.client_id = ? AND r.state = 'pending' AND (r.not_before IS NULL OR r.not_before <= ?))`
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
	// The claim's and the acknowledgement's run events (migration 12: the
	// trigger leaves run.sent and run.received to these two statements).
	// run.sent: ?1 now, ?2 the client, then [run, job] pairs or one of each.
	sentEventsSQL = writeStatement(`INSERT INTO events (type, at, job_id, run_id, client_id, detail)
		SELECT 'run.sent', ?1, value->>1, value->>0, ?2, '' FROM json_each(?3)`)
	sentEventSQL = writeStatement(`INSERT INTO events (type, at, job_id, run_id, client_id, detail) VALUES ('run.sent', ?1, ?3, ?4, ?2, '')`)
	// run.received: ?1 now, ?2 the run ids (or id), ?3 the client; the runs
	// the acknowledgement moved are those it stamped with its time.
	ackEventsSQL = writeStatement(`INSERT INTO events (type, at, job_id, run_id, client_id, detail)
		SELECT 'run.received', ?1, job_id, id, client_id, '' FROM runs
		WHERE id IN (SELECT value FROM json_each(?2)) AND client_id = ?3 AND state = 'received' AND acked_at = ?1 ORDER BY id`)
	ackEventSQL = writeStatement(`INSERT INTO events (type, at, job_id, run_id, client_id, detail)
		SELECT 'run.received', ?1, job_id, id, client_id, '' FROM runs
		WHERE id = ?2 AND client_id = ?3 AND state = 'received' AND acked_at = ?1`)
	// A report is {"id", "state", "exit", "reason", "started", "finished",
	// "output", "truncated"}; absent times are null. ?1 is now.
	reportRowsSQL = `(SELECT value->>'id' AS id, value->>'state' AS state, value->>'exit' AS exit_code,
		value->>'reason' AS reason, value->>'started' AS started, value->>'finished' AS finished,
		value->>'output' AS output, value->>'truncated' AS truncated FROM jsonb_each(?2)) AS j`
	startSQL = writeStatement(`UPDATE runs SET state = j.state, started_at = COALESCE(j.started, runs.started_at, ?1),
		acked_at = COALESCE(runs.acked_at, ?1), updated_at = ?1
		FROM ` + reportRowsSQL + `
		WHERE runs.id = j.id AND runs.client_id = ?3 AND ` + db.StateIn("runs.state", runstate.Start) + ` RETURNING runs.id`)
	finishSQL = writeStatement(`UPDATE runs SET state = j.state, exit_code = j.exit_code, reason = j.reason,
		started_at = COALESCE(j.started, runs.started_at), finished_at = COALESCE(j.finished, ?1),
		acked_at = COALESCE(runs.acked_at, ?1), output = j.output, output_truncated = j.truncated, updated_at = ?1
		FROM ` + reportRowsSQL + `
		WHERE runs.id = j.id AND runs.client_id = ?3 AND ` + finishFrom() + ` RETURNING runs.id`)
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
)

// newHotStatements names the hot statements among those the writer's cache
// prepared at open (they are declared with writeStatement, like the rest).
func newHotStatements(wc *stmtCache) *hotStatements {
	return &hotStatements{
		pending: wc.m[pendingSQL], send: wc.m[sendSQL], sendOne: wc.m[sendOneSQL], ack: wc.m[ackSQL], ackOne: wc.m[ackOneSQL],
		sentEvents: wc.m[sentEventsSQL], sentEvent: wc.m[sentEventSQL], ackEvents: wc.m[ackEventsSQL], ackEvent: wc.m[ackEventSQL],
		start: wc.m[startSQL], finish: wc.m[finishSQL], startOne: wc.m[startOneSQL], finishOne: wc.m[finishOneSQL],
		savepoint: wc.m[savepointSQL], release: wc.m[releaseSQL], rollback: wc.m[rollbackSQL],
	}
}

// pairArray renders [run, job] pairs as a JSON array for json_each.
func pairArray(runs, jobs []int64) string {
	b := make([]byte, 0, 2+len(runs)*18)
	b = append(b, '[')
	for i, id := range runs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, id, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, jobs[i], 10)
		b = append(b, ']')
	}
	return string(append(b, ']'))
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
