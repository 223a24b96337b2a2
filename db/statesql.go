package db

import (
	"strings"

	"github.com/scirectl/scirectl/runstate"
)

// StateIn renders the source states of ev as an SQL condition on the state
// column col, for the WHERE clause of the UPDATE that performs the
// transition: the check and the change are then one atomic step. When
// runstate.NeedsSent guards one of the source states (a report from
// pending), the condition also requires the run's attempts column (col's
// table, if col names one) to be above zero. That is true of every run
// that left pending (dispatch counts the attempt), so the guard is one AND
// on the whole list rather than an OR beside it: an OR in the WHERE clause
// of the set-based report statements made SQLite's planner leave the
// primary-key lookup (three times the CPU per job at batch 100). The text
// holds constants only, never input, and is the same in every driver's
// dialect.
func StateIn(col string, ev runstate.Event) string {
	from := runstate.From(ev)
	q := make([]string, len(from))
	guarded := false
	for i, s := range from {
		q[i] = "'" + string(s) + "'"
		guarded = guarded || runstate.NeedsSent(s, ev)
	}
	cond := col + " IN (" + strings.Join(q, ",") + ")"
	if !guarded {
		return cond
	}
	attempts := "attempts"
	if table, _, ok := strings.Cut(col, "."); ok {
		attempts = table + ".attempts"
	}
	return cond + " AND " + attempts + " > 0"
}
