package db

import (
	"strings"

	"github.com/scirectl/scirectl/runstate"
)

// StateIn renders the source states of ev as an SQL condition on the state
// column col, for the WHERE clause of the UPDATE that performs the
// transition: the check and the change are then one atomic step. A source
// state that runstate.NeedsSent guards also requires the run's attempts
// column (col's table, if col names one) to be above zero. The text holds
// constants only, never input, and is the same in every driver's dialect.
func StateIn(col string, ev runstate.Event) string {
	attempts := "attempts"
	if table, _, ok := strings.Cut(col, "."); ok {
		attempts = table + ".attempts"
	}
	var plain, guarded []string
	for _, s := range runstate.From(ev) {
		if runstate.NeedsSent(s, ev) {
			guarded = append(guarded, "("+col+" = '"+string(s)+"' AND "+attempts+" > 0)")
		} else {
			plain = append(plain, "'"+string(s)+"'")
		}
	}
	conds := guarded
	if len(plain) > 0 {
		conds = append([]string{col + " IN (" + strings.Join(plain, ",") + ")"}, guarded...)
	}
	if len(conds) == 1 {
		return conds[0]
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}
