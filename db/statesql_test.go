package db

import (
	"testing"

	"github.com/scirectl/scirectl/runstate"
)

func TestStateIn(t *testing.T) {
	cases := []struct {
		col  string
		ev   runstate.Event
		want string
	}{
		{"state", runstate.Dispatch, "state IN ('pending')"},
		{"state", runstate.Ack, "state IN ('sent')"},
		{"runs.state", runstate.Start, "runs.state IN ('pending','sent','received') AND runs.attempts > 0"},
		{"cur.state", runstate.Succeed, "cur.state IN ('pending','sent','received','running') AND cur.attempts > 0"},
	}
	for _, tc := range cases {
		if got := StateIn(tc.col, tc.ev); got != tc.want {
			t.Errorf("StateIn(%s, %s) = %s\nwant %s", tc.col, tc.ev, got, tc.want)
		}
	}
}
