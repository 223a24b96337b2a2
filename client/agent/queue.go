package agent

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/pki"
	"github.com/scirectl/scirectl/runoutput"
)

// Subdirectories and files of the state directory (see the package comment).
const (
	queueDir    = "queue"
	runningDir  = "running"
	outboxDir   = "outbox"
	rejectedDir = "rejected"
	workDir     = "work"
	doneLog     = "done.log"

	xmlExt        = ".xml"
	runningSuffix = ".running.xml"
)

// doneKeep is how many delivered run ids done.log remembers. A run comes back
// only when its lease expired before the ack arrived, which is minutes, not
// thousands of runs, later; the log is compacted to this many ids when it has
// grown to twice as many, so it stays small however long the agent lives.
const doneKeep = 1000

// store is the agent's durable state: queue, running markers, outbox and
// done-log. Every write that a later step relies on is durable (pki.WriteFile:
// temp file, fsync, rename, directory fsync) before the method returns.
//
// The executor (queue, markers, work) and the outbox delivery may run at the
// same time; they touch different files except done, which mu guards.
type store struct {
	dir string
	log *slog.Logger

	outputLimit int   // bound of a run's output read back from its spool (recovery)
	segment     int64 // bytes per spool segment file; 0: defaultSpoolSegment

	mu        sync.Mutex
	done      map[int64]bool
	doneOrder []int64
	doneNote  map[int64]string // what done.log says beyond the id ("cancelled")
}

// queuedJob is an acknowledged job waiting in the queue.
type queuedJob struct {
	jobxml.Job
	path string
}

// badEntry is a queue file that no longer decodes.
type badEntry struct {
	run int64
	err error
}

// report is one status waiting in the outbox.
type report struct {
	jobxml.Status
	path    string
	running bool // a "running" report, superseded by the final one
	size    int  // bytes on disk, to bound a batch
}

func openStore(stateDir string, log *slog.Logger) (*store, error) {
	s := &store{dir: stateDir, log: log, done: map[int64]bool{}, doneNote: map[int64]string{},
		outputLimit: defaultOutputLimit}
	for _, d := range []string{queueDir, runningDir, outboxDir, rejectedDir, workDir, streamDir} {
		p := filepath.Join(stateDir, d)
		if err := os.MkdirAll(p, 0o700); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
		// A crash inside pki.WriteFile leaves its temp file behind.
		tmps, _ := filepath.Glob(filepath.Join(p, ".*.tmp*"))
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	if err := s.loadDone(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *store) path(parts ...string) string {
	return filepath.Join(append([]string{s.dir}, parts...)...)
}

func runName(run int64) string               { return strconv.FormatInt(run, 10) }
func (s *store) queuePath(run int64) string  { return s.path(queueDir, runName(run)+xmlExt) }
func (s *store) markerPath(run int64) string { return s.path(runningDir, runName(run)) }
func (s *store) finalPath(run int64) string  { return s.path(outboxDir, runName(run)+xmlExt) }
func (s *store) startPath(run int64) string  { return s.path(outboxDir, runName(run)+runningSuffix) }
func (s *store) workPath(run int64) string   { return s.path(workDir, runName(run)) }

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// remove deletes a file that may already be gone (recovery repeats steps a
// crash may have done).
func remove(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// --- queue ---

// enqueue stores an acknowledged-to-be job document exactly as received.
func (s *store) enqueue(run int64, doc []byte) error {
	return pki.WriteFile(s.queuePath(run), doc, 0o600)
}

// queued reports whether run waits in the queue (or is running).
func (s *store) queued(run int64) bool { return exists(s.queuePath(run)) }

// known reports whether run is already in the agent's hands — queued,
// running, finished with a report not yet delivered, or delivered recently —
// so a re-delivery of it must only be re-acknowledged, never run again.
func (s *store) known(run int64) bool {
	if s.queued(run) || exists(s.markerPath(run)) || s.finished(run) ||
		exists(s.path(rejectedDir, runName(run)+xmlExt)) {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[run]
}

// finished reports whether run's final report is in the outbox.
func (s *store) finished(run int64) bool { return exists(s.finalPath(run)) }

// runIDs lists the run ids named by the files of dir that end in suffix.
func (s *store) runIDs(dir, suffix string) ([]int64, error) {
	ents, err := os.ReadDir(s.path(dir))
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), suffix)
		if !ok || e.IsDir() {
			continue
		}
		id, err := strconv.ParseInt(name, 10, 64)
		if err != nil || id <= 0 {
			continue // not ours (a stray file, or a temp file)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// queuedRuns lists the run ids in the queue.
func (s *store) queuedRuns() ([]int64, error) { return s.runIDs(queueDir, xmlExt) }

// listQueue returns the queued jobs in execution order: highest priority
// first, then oldest job (lowest id), then lowest run id. Files that no
// longer decode are returned apart, for the caller to report.
func (s *store) listQueue() ([]queuedJob, []badEntry, error) {
	ids, err := s.queuedRuns()
	if err != nil {
		return nil, nil, err
	}
	var jobs []queuedJob
	var bad []badEntry
	for _, id := range ids {
		p := s.queuePath(id)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		j, err := jobxml.DecodeJob(b)
		if err == nil && j.Run != id {
			err = fmt.Errorf("document is for run %d, file is named for run %d", j.Run, id)
		}
		if err != nil {
			bad = append(bad, badEntry{run: id, err: err})
			continue
		}
		jobs = append(jobs, queuedJob{Job: j, path: p})
	}
	slices.SortFunc(jobs, func(a, b queuedJob) int {
		if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return cmp.Compare(a.Run, b.Run)
	})
	return jobs, bad, nil
}

// dropQueued forgets a queued run the server no longer wants run (stale).
func (s *store) dropQueued(run int64) error { return remove(s.queuePath(run)) }

// --- running markers ---

// markRunning durably records that run is about to start, so that a crash
// from here on is reported as "interrupted" instead of running it twice.
func (s *store) markRunning(run int64, started time.Time) error {
	return pki.WriteFile(s.markerPath(run), []byte(started.UTC().Format(time.RFC3339Nano)+"\n"), 0o600)
}

// markers returns the runs with a marker and the start time each records
// (zero when unreadable).
func (s *store) markers() (map[int64]time.Time, error) {
	ids, err := s.runIDs(runningDir, "")
	if err != nil {
		return nil, err
	}
	out := make(map[int64]time.Time, len(ids))
	for _, id := range ids {
		b, _ := os.ReadFile(s.markerPath(id))
		t, _ := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
		out[id] = t
	}
	return out, nil
}

// finish removes what a finished run leaves behind, in crash-safe order. It
// must be called only once the final report is durable in the outbox: the
// marker goes first (a queue file alone, with a final report, is recognised
// as done), the queue file next, the scratch directory last.
func (s *store) finish(run int64) error {
	if err := remove(s.markerPath(run)); err != nil {
		return err
	}
	if err := remove(s.queuePath(run)); err != nil {
		return err
	}
	return os.RemoveAll(s.workPath(run))
}

// --- outbox ---

// putReport writes a status durably to the outbox. A final report replaces
// the run's "running" report: sending both is pointless, and a "running"
// arriving after the final one would only be refused.
func (s *store) putReport(st jobxml.Status) error {
	doc, err := jobxml.EncodeStatuses([]jobxml.Status{st})
	if err != nil {
		return fmt.Errorf("encode status of run %d: %w", st.Run, err)
	}
	if st.State == jobxml.StateRunning {
		return pki.WriteFile(s.startPath(st.Run), doc, 0o600)
	}
	if err := pki.WriteFile(s.finalPath(st.Run), doc, 0o600); err != nil {
		return err
	}
	return remove(s.startPath(st.Run))
}

// outbox returns the reports waiting for the server, oldest run first.
// A file that does not decode (damaged by hand, say) is set aside in
// rejected/ with a log line rather than blocking every later report.
func (s *store) outbox() ([]report, error) {
	ents, err := os.ReadDir(s.path(outboxDir))
	if err != nil {
		return nil, err
	}
	var out []report
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, xmlExt) {
			continue
		}
		p := s.path(outboxDir, name)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		running := strings.HasSuffix(name, runningSuffix)
		sts, err := jobxml.DecodeStatuses(b)
		if err == nil && len(sts) != 1 {
			err = fmt.Errorf("%d statuses in one outbox file, want 1", len(sts))
		}
		if err != nil {
			s.log.Error("outbox file does not decode; set aside", "file", p, "err", err)
			if err := os.Rename(p, s.path(rejectedDir, name)); err != nil {
				return nil, err
			}
			continue
		}
		if running && s.finished(sts[0].Run) {
			remove(p) // superseded: see putReport
			continue
		}
		out = append(out, report{Status: sts[0], path: p, running: running, size: len(b)})
	}
	slices.SortFunc(out, func(a, b report) int { return cmp.Compare(a.Run, b.Run) })
	return out, nil
}

// outboxLen counts the reports waiting in the outbox.
func (s *store) outboxLen() int {
	ents, _ := os.ReadDir(s.path(outboxDir))
	n := 0
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") && strings.HasSuffix(e.Name(), xmlExt) {
			n++
		}
	}
	return n
}

// delivered removes a report the server has answered. A final report's run
// id goes to done.log first, so there is no moment at which a re-delivered
// run would look new.
func (s *store) delivered(r report) error {
	if !r.running {
		if err := s.appendDone(r.Run); err != nil {
			return err
		}
	}
	return remove(r.path)
}

// reject sets aside a report the server refuses to parse (fault 400/413):
// retrying it could never succeed and would hold up the others, and deleting
// it would lose the result, so it stays on disk for the operator.
func (s *store) reject(r report) error {
	if !r.running {
		if err := s.appendDone(r.Run); err != nil {
			return err
		}
	}
	return os.Rename(r.path, s.path(rejectedDir, filepath.Base(r.path)))
}

// --- done-log ---

func (s *store) loadDone() error {
	f, err := os.Open(s.path(doneLog))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// A line is "<run>" or "<run> <note>". A torn last line (crash
		// mid-append) does not parse and is skipped.
		id, note, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if id, err := strconv.ParseInt(id, 10, 64); err == nil && id > 0 {
			s.addDone(id, strings.TrimSpace(note))
		}
	}
	return sc.Err()
}

func (s *store) addDone(id int64, note string) {
	if !s.done[id] {
		s.done[id] = true
		s.doneOrder = append(s.doneOrder, id)
	}
	if note != "" {
		s.doneNote[id] = note
	}
}

func (s *store) doneLine(id int64) string {
	if note := s.doneNote[id]; note != "" {
		return runName(id) + " " + note + "\n"
	}
	return runName(id) + "\n"
}

// appendDone records a delivered run durably (append + fsync).
func (s *store) appendDone(run int64) error { return s.appendDoneNote(run, "") }

// appendDoneNote records a run that left the agent's hands durably, with a
// note saying how when it was not by a delivered report ("cancelled").
func (s *store) appendDoneNote(run int64, note string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done[run] {
		return nil
	}
	p := s.path(doneLog)
	if len(s.doneOrder) >= 2*doneKeep {
		keep := s.doneOrder[len(s.doneOrder)-doneKeep:]
		var b strings.Builder
		for _, id := range keep {
			b.WriteString(s.doneLine(id))
		}
		if err := pki.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			return err
		}
		s.doneOrder = slices.Clone(keep)
		clear(s.done)
		for _, id := range keep {
			s.done[id] = true
		}
		for id := range s.doneNote {
			if !s.done[id] {
				delete(s.doneNote, id)
			}
		}
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	line := runName(run) + "\n"
	if note != "" {
		line = runName(run) + " " + note + "\n"
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	s.addDone(run, note)
	return nil
}

// --- recovery ---

// recoverRuns brings the state directory back to a consistent state after a
// crash at any point (see the package comment) and returns the runs found
// interrupted. It must run before anything else touches the store.
func (s *store) recoverRuns(now time.Time) ([]int64, error) {
	marks, err := s.markers()
	if err != nil {
		return nil, err
	}
	var interrupted []int64
	ids := make([]int64, 0, len(marks))
	for id := range marks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if !s.finished(id) && !s.isDone(id) {
			started := marks[id]
			if started.IsZero() || started.After(now) {
				started = now // marker unreadable: a report still needs a start time
			}
			// The output is the spool's: what the script wrote until the
			// agent died, bounded as a report's, once.
			kept, _, err := s.spooledOutput(id, s.outputLimit)
			if err != nil {
				s.log.Warn("cannot read the output spool of an interrupted run; reporting it without its output", "run", id, "err", err)
				kept = runoutput.Kept{}
			}
			st := jobxml.Status{Run: id, State: jobxml.StateFailed, Started: started.UTC(), Finished: now.UTC(),
				Reason: ReasonInterrupted, Truncated: kept.Truncated(),
				Output: withNote(kept.String(), "[scirectl agent: the agent stopped while this job was running (crash, kill or power loss); "+
					"it was not run again because it may already have had effects]")}
			if err := s.putReport(st); err != nil {
				return nil, err
			}
			interrupted = append(interrupted, id)
		}
		if err := s.finish(id); err != nil {
			return nil, err
		}
	}
	queued, err := s.queuedRuns()
	if err != nil {
		return nil, err
	}
	for _, id := range queued {
		if s.finished(id) || s.isDone(id) {
			if err := remove(s.queuePath(id)); err != nil {
				return nil, err
			}
		}
	}
	// A spool outlives its run only while the run's final report waits in
	// the outbox (it is streamed to the server first: stream.go); any
	// other is a leftover.
	spooled, err := s.spooledRuns()
	if err != nil {
		return nil, err
	}
	for _, id := range spooled {
		if !s.finished(id) {
			if err := s.removeSpool(id); err != nil {
				return nil, err
			}
		}
	}
	// Nothing runs yet, so every scratch directory is a leftover.
	ents, err := os.ReadDir(s.path(workDir))
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if err := os.RemoveAll(s.path(workDir, e.Name())); err != nil {
			return nil, err
		}
	}
	return interrupted, nil
}

func (s *store) isDone(run int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[run]
}
