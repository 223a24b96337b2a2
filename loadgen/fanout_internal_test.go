package loadgen

import (
	"testing"
	"time"
)

// The job's runs are matched by run: a second completion of a run is a
// duplicate, a run never completed is missing, and then no time until all
// were final is given; a completion of another job is an error.
func TestCollectFanout(t *testing.T) {
	sent := time.Unix(1000, 0)
	at := func(ms int) int64 { return sent.Add(time.Duration(ms) * time.Millisecond).UnixNano() }
	newBench := func(done ...[]doneRec) *bench {
		b := &bench{o: Options{Mode: Fanout}, res: &Results{}, errs: map[string]int64{}, calls: map[string]int64{},
			fan: &fanout{sent: sent, job: 7, runs: 3}}
		for _, d := range done {
			b.agents = append(b.agents, &agent{done: d})
		}
		return b
	}

	b := newBench(
		[]doneRec{{job: 7, run: 1, recv: at(10), done: at(20)}},
		[]doneRec{{job: 7, run: 2, recv: at(30), done: at(50)}},
		[]doneRec{{job: 7, run: 3, recv: at(40), done: at(45)}},
	)
	b.collectFanout()
	r := b.res
	if r.Jobs != 1 || r.Runs != 3 || r.Completed != 3 || r.Missing != 0 || r.Duplicates != 0 {
		t.Fatalf("jobs %d, runs %d, completed %d, missing %d, duplicates %d", r.Jobs, r.Runs, r.Completed, r.Missing, r.Duplicates)
	}
	if r.AllFinalSeconds == nil || *r.AllFinalSeconds != 0.05 {
		t.Errorf("all_final_seconds %v, want 0.05 (the last completion)", r.AllFinalSeconds)
	}
	if r.SubmitToReceived.Max != 40 || r.SubmitToCompleted.P50 != 45 || r.SubmitToCompleted.Max != 50 {
		t.Errorf("submit→received %+v, submit→completed %+v", r.SubmitToReceived, r.SubmitToCompleted)
	}

	b = newBench(
		[]doneRec{{job: 7, run: 1, recv: at(10), done: at(20)}, {job: 7, run: 1, recv: at(900), done: at(950)}},
		[]doneRec{{job: 7, run: 2, recv: at(30), done: at(50)}, {job: 8, run: 9, recv: at(60), done: at(70)}},
	)
	b.collectFanout()
	r = b.res
	if r.Completed != 2 || r.Missing != 1 || r.Duplicates != 1 || r.AllFinalSeconds != nil {
		t.Errorf("completed %d, missing %d, duplicates %d, all final %v; want 2, 1, 1 and none", r.Completed, r.Missing, r.Duplicates, r.AllFinalSeconds)
	}
	if b.errs["agent.getJobs: job not submitted by the bench"] != 1 {
		t.Errorf("errors %v: want the other job's run counted", b.errs)
	}
	// The first completion of a run counts, not the duplicate's.
	if r.SubmitToCompleted.Max != 50 {
		t.Errorf("submit→completed %+v: the duplicate counted", r.SubmitToCompleted)
	}
}
