package runstate

import (
	"errors"
	"testing"
)

func TestNext(t *testing.T) {
	ok := []struct {
		from State
		ev   Event
		to   State
	}{
		{Pending, Dispatch, Sent}, {Pending, Deny, Denied}, {Pending, Expire, Expired},
		{Sent, Ack, Received}, {Received, Start, Running}, {Running, Succeed, Succeeded}, {Running, Fail, Failed},
		{Sent, Succeed, Succeeded}, {Pending, Fail, Failed}, // reports overtaking a lost ack reply / an expired lease
		{Sent, LeaseExpired, Pending}, {Running, Lose, Failed}, {Received, Lose, Failed}, {Received, Renew, Received},
		{Pending, Cancel, Cancelled}, {Running, Cancel, Cancelled},
	}
	for _, tc := range ok {
		got, err := Next(tc.from, tc.ev)
		if err != nil || got != tc.to {
			t.Errorf("Next(%s, %s) = %s, %v; want %s", tc.from, tc.ev, got, err, tc.to)
		}
	}
	bad := []struct {
		from State
		ev   Event
	}{
		{Pending, Ack}, {Received, Dispatch}, {Succeeded, Fail}, {Failed, Start}, {Denied, Dispatch},
		{Cancelled, Cancel}, {Running, Expire}, {Pending, Lose}, {Received, LeaseExpired}, {Running, Renew}, {Failed, Renew},
	}
	for _, tc := range bad {
		_, err := Next(tc.from, tc.ev)
		var te *TransitionError
		if !errors.As(err, &te) {
			t.Errorf("Next(%s, %s) err = %v, want a TransitionError", tc.from, tc.ev, err)
		}
	}
}

func TestFinalStatesHaveNoWayOut(t *testing.T) {
	for ev, tr := range transitions {
		for _, from := range tr.from {
			if from.Final() {
				t.Errorf("event %s leaves final state %s", ev, from)
			}
		}
	}
}

func TestRequeue(t *testing.T) {
	if Requeue(1, 3) != Pending || Requeue(3, 3) != Failed || Requeue(100, 0) != Pending {
		t.Fatal("Requeue does not honour max_attempts")
	}
}

func TestJobStatus(t *testing.T) {
	cases := []struct {
		counts map[State]int
		want   string
	}{
		{map[State]int{}, "empty"},
		{map[State]int{Pending: 2}, "pending"},
		{map[State]int{Pending: 1, Succeeded: 1}, "running"},
		{map[State]int{Succeeded: 3}, "succeeded"},
		{map[State]int{Succeeded: 2, Denied: 1}, "failed"},
		{map[State]int{Cancelled: 2}, "cancelled"},
	}
	for _, tc := range cases {
		if got := JobStatus(tc.counts); got != tc.want {
			t.Errorf("JobStatus(%v) = %s, want %s", tc.counts, got, tc.want)
		}
	}
}

func TestReportEvent(t *testing.T) {
	for _, s := range []State{Pending, Sent, Received, Denied, Expired, Cancelled, "bogus"} {
		if _, err := ReportEvent(s); err == nil {
			t.Errorf("ReportEvent(%s) accepted a state agents may not report", s)
		}
	}
}

// A report may leave Pending only for a run sent before (its lease expired);
// a run never sent is not the agent's to report.
func TestNextRunRefusesReportsOfRunsNeverSent(t *testing.T) {
	for _, ev := range []Event{Start, Succeed, Fail} {
		if !NeedsSent(Pending, ev) {
			t.Errorf("NeedsSent(pending, %s) = false", ev)
		}
		_, err := NextRun(Pending, 0, ev)
		var te *TransitionError
		if !errors.As(err, &te) || !te.NeverSent {
			t.Errorf("NextRun(pending, 0, %s) err = %v, want a never-sent TransitionError", ev, err)
		}
		if _, err := NextRun(Pending, 1, ev); err != nil {
			t.Errorf("NextRun(pending, 1, %s) = %v, want allowed (lease expired after sending)", ev, err)
		}
		if _, err := NextRun(Sent, 0, ev); err != nil {
			t.Errorf("NextRun(sent, 0, %s) = %v", ev, err)
		}
	}
	for _, ev := range []Event{Dispatch, Deny, Expire, Cancel} {
		if NeedsSent(Pending, ev) {
			t.Errorf("NeedsSent(pending, %s) = true: the server's own events need no sending", ev)
		}
		if _, err := NextRun(Pending, 0, ev); err != nil {
			t.Errorf("NextRun(pending, 0, %s) = %v", ev, err)
		}
	}
}
