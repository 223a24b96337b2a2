package agent

import (
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Operator cancellation (job.cancel). The server tells the agent about its
// cancelled runs in two ways:
//
//   - agent.heartbeat's result carries cancel: the ids (decimal strings) of
//     this client's runs cancelled recently while the agent may hold them.
//     The same ids come back for a while, so ids the agent does not hold —
//     never had, or already dropped — are ignored.
//   - agent.reportStatus marks a report of a cancelled run with
//     cancelled: true. The report counts as answered (it leaves the outbox)
//     and, if the run is still going, it is stopped.
//
// A cancelled run that is running is stopped like a timed-out one, whole
// process group, but gently first: SIGTERM, then SIGKILL cancelGrace later
// for whatever is left. It is then reported like any ended run, failed with
// reason "cancelled" and the output it wrote until it stopped: the server
// keeps the run cancelled and takes the output (it answers the report
// accepted, cancelled, with a note), and done.log gets "<run> cancelled"
// when that answer comes. A report of a cancelled run that had finished
// before the cancel reached the agent is delivered the same way.
//
// A queued one is dropped and never started, and nothing is reported for
// it. done.log gets the line "<run> cancelled", written before the queue
// file, the crash marker and a "running" report are removed, so that a
// crash in between is recovered as a finished run (recoverRuns) and never
// reported "interrupted" or run again.
//
// While it holds runs, the agent heartbeats once per poll cycle (talk), at
// least every beatEveryMax while it works through a queue of short jobs, and
// every keepAlivePeriod while a job runs (keepAlive), so a cancel reaches it
// within about one poll interval, and within 5–10 s while a job runs. An
// agent that holds none has nothing to cancel, and heartbeats only every
// IdleHeartbeatEvery (beatDue).
//
// Runs the server declared lost (lease.go) are learnt the same way, from
// agent.heartbeat's lost list, and stopped or dropped too, but nothing
// final is reported for them, running or finished: the server keeps them
// failed, reason "lost", and would refuse their results. done.log line
// "<run> lost".

const (
	cancelGrace  = 5 * time.Second  // SIGTERM → SIGKILL of a cancelled run's process group
	maxKeepAlive = 10 * time.Second // heartbeat period ceiling while a job runs
	beatEveryMax = 5 * time.Second  // between heartbeats while busy, at most
	noteCancel   = "cancelled"      // done.log note of a cancelled run
	noteLost     = "lost"           // done.log note of a run the server declared lost
)

// cancels gathers the run ids the server took back (cancelled by the
// operator, or declared lost), learnt from any goroutine (the main loop,
// keepAlive, the background delivery of a "running" report), each with its
// done.log note (noteCancel, noteLost). The run in progress is stopped at
// once; the others wait for the main loop (applyCancels), which alone
// touches the queue.
type cancels struct {
	mu      sync.Mutex
	current int64         // run being executed; 0 when none
	stop    chan struct{} // closed to stop current
	stopped string        // why current was stopped; "" while it may run
	pending map[int64]string
}

// add records runs taken back with note and stops the current one if it is
// among them. It returns whether it stopped the current run.
func (c *cancels) add(ids []int64, note string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	hit := false
	for _, id := range ids {
		if id <= 0 {
			continue
		}
		if id == c.current && c.current != 0 {
			if c.stopped == "" {
				c.stopped, hit = note, true
				close(c.stop)
			}
			continue
		}
		if c.pending == nil {
			c.pending = map[int64]string{}
		}
		if c.pending[id] == "" {
			c.pending[id] = note
		}
	}
	return hit
}

// begin makes run the current one. It returns the channel closed when the
// run is taken back, or, when the run was taken back before it started, the
// note saying how.
func (c *cancels) begin(run int64) (<-chan struct{}, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if note := c.pending[run]; note != "" {
		delete(c.pending, run)
		return nil, note
	}
	c.current, c.stop, c.stopped = run, make(chan struct{}), ""
	return c.stop, ""
}

// end closes the current run and says why it was stopped ("": it was not).
func (c *cancels) end(run int64) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.current != run {
		return ""
	}
	stopped := c.stopped
	c.current, c.stop, c.stopped = 0, nil, ""
	return stopped
}

// take returns and forgets the runs taken back and not applied yet.
func (c *cancels) take() map[int64]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		return nil
	}
	out := maps.Clone(c.pending)
	clear(c.pending)
	return out
}

// parseRunIDs reads an array of run ids as the server sends them, decimal
// strings; anything else is skipped.
func parseRunIDs(vs []string) []int64 {
	var ids []int64
	for _, v := range vs {
		if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 {
			ids = append(ids, id)
		}
	}
	return ids
}

// learnCancels takes the cancelled runs of a heartbeat (or report) answer.
func (a *agent) learnCancels(ids []int64, via string) {
	if len(ids) == 0 {
		return
	}
	if a.cancels.add(ids, noteCancel) {
		a.log.Warn("the operator cancelled the run in progress; stopping its process group", "via", via)
	}
}

// learnLost takes the runs a heartbeat answer says the server declared
// lost: the agent was silent for longer than their timeout and grace (cut
// off from the server, or a server that does not know it holds them). The
// server keeps them failed and would refuse their results.
func (a *agent) learnLost(ids []int64, via string) {
	if len(ids) == 0 {
		return
	}
	if a.cancels.add(ids, noteLost) {
		a.log.Warn("the server declared the run in progress lost; stopping its process group", "via", via)
	}
}

// applyCancels drops the cancelled and lost runs the agent holds without
// running them: queued ones, and reports still in the outbox. Main loop
// only.
func (a *agent) applyCancels() error {
	for run, note := range a.cancels.take() {
		if err := a.dropCancelled(run, note); err != nil {
			return err
		}
	}
	return nil
}

// dropCancelled forgets a run taken back (note: noteCancel or noteLost)
// that is not running: its queue file, its crash marker, its outbox
// entries, its output spool — except the final report of a cancelled run,
// which is delivered for its output. A run the agent does not hold is
// ignored.
func (a *agent) dropCancelled(run int64, note string) error {
	s := a.store
	queued, final, started := s.queued(run), s.finished(run), exists(s.startPath(run))
	if !queued && !final && !started && !exists(s.markerPath(run)) {
		delete(a.pendingAck, run)
		return nil // not ours (any more): ignored
	}
	switch {
	case note == noteLost && final:
		a.log.Warn("run declared lost by the server after it had finished here; its report is dropped, the server keeps it failed (lost)", "run", run)
	case note == noteLost:
		a.log.Warn("run declared lost by the server; dropped from the queue, never started", "run", run)
	case final:
		// The report stays: the server keeps the run cancelled and takes
		// its output (the answer says cancelled; sendBatch notes it).
		a.log.Debug("run cancelled by the operator after it had finished here; its report is delivered for its output, the server keeps it cancelled", "run", run)
		return nil
	default:
		a.log.Info("run cancelled by the operator; dropped from the queue, never started", "run", run)
	}
	return a.forgetCancelled(run, note)
}

// forgetCancelled records run as taken back (note) in done.log, then
// removes what the agent kept of it, in the crash-safe order of the package
// comment.
func (a *agent) forgetCancelled(run int64, note string) error {
	s := a.store
	if err := s.appendDoneNote(run, note); err != nil {
		return err
	}
	delete(a.pendingAck, run)
	if err := remove(s.startPath(run)); err != nil {
		return err
	}
	if err := remove(s.finalPath(run)); err != nil {
		return err
	}
	if err := s.removeSpool(run); err != nil {
		return err
	}
	return s.finish(run)
}

// stopOnClose watches stop for a started process, the leader of its own
// process group pgid. When stop closes, the group gets SIGTERM, and SIGKILL
// cancelGrace later if the leader has not exited by then. The function
// returned must be called once the process has been waited for; it says
// whether stop fired, and then kills what is left of the group (a child that
// ignored SIGTERM while the leader exited).
func stopOnClose(stop <-chan struct{}, pgid int) func() bool {
	if stop == nil {
		return func() bool { return false }
	}
	exited := make(chan struct{})
	done := make(chan struct{})
	var fired atomic.Bool
	go func() {
		defer close(done)
		select {
		case <-exited:
			return
		case <-stop:
		}
		fired.Store(true)
		syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(cancelGrace)
		defer t.Stop()
		select {
		case <-exited:
		case <-t.C:
			syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}()
	return func() bool {
		close(exited)
		<-done
		if !fired.Load() {
			return false
		}
		syscall.Kill(-pgid, syscall.SIGKILL)
		return true
	}
}
