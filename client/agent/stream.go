package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/scirectl/scirectl/api"
)

// Live output: the sender (docs/protocol.md, "agent.output").
//
// While a job runs, the sender wakes every streamEvery and, when a spool
// (output.go) holds bytes past what the server has accepted, sends them in
// one agent.output request, the bytes of every spooled run together:
// chunks cut at character boundaries, at most api.MaxOutputChunk each. The
// spool is fsynced before its bytes are read for sending, so the server
// never holds output the agent's disk does not; what the server accepted is
// recorded in the spool (acked), so an agent that starts again sends from
// there. The server's answer for each chunk says how much of the run's
// stream it now has: a smaller offset than the chunk's (it lost something)
// makes the sender go back there at once; stop makes it send no more of
// that run.
//
// Streaming is a convenience for the operator watching a job: it never
// delays or fails the job or its final report, which carries the bounded
// output whatever was streamed. A failed request is tried again a second
// later; a server that does not know agent.output (an older one) turns
// streaming off for the agent's life. A run whose unsent bytes pass twice
// the output limit is no longer streamed (the server is unreachable or too
// slow): its spool keeps only what a bounded output keeps.
//
// A spool outlives its run when the agent died while the run went on:
// start-up recovery reports the run interrupted with the output read from
// the spool, and the spool stays until its last bytes are streamed (talk
// does that before it delivers the report), the server says stop, or the
// report has left the outbox.

const (
	streamEvery         = time.Second      // between rounds of the sender while a job runs
	streamCallTimeout   = 10 * time.Second // one agent.output request
	streamCallBytes     = 2 << 20          // output per request (XML-escaped, it stays well under request size limits)
	minStreamCallBytes  = 64 << 10         // the least, after fault 413 halved it
	streamRoundsPerTick = 4                // rounds at once while a request was full or the server asked for bytes again
)

// streamer is the agent's live output state.
type streamer struct {
	mu     sync.Mutex       // one round at a time; guards live and budget
	off    atomic.Bool      // the server does not know agent.output: no streaming for the agent's life
	live   map[int64]*spool // the spools of running jobs
	budget int              // output per request; 0: streamCallBytes
}

// errSpoolGap says the spool no longer holds the bytes the server needs.
var errSpoolGap = errors.New("the spool no longer holds them")

// begin makes a running job's spool one the sender streams.
func (st *streamer) begin(run int64, sp *spool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.live == nil {
		st.live = map[int64]*spool{}
	}
	st.live[run] = sp
	if st.off.Load() {
		sp.stop("the server does not take live output")
		sp.told.Store(true)
	}
}

// end takes a job's spool off the sender's list; it waits for a round in
// progress.
func (st *streamer) end(run int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.live, run)
}

// streamWhileRunning runs rounds of the sender every streamEvery until ctx
// ends (the job has ended). It closes done when it returns.
func (a *agent) streamWhileRunning(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(streamEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i := 0; i < streamRoundsPerTick && ctx.Err() == nil && a.streamOutput(ctx); i++ {
		}
	}
}

// streamLeftovers streams what the spools of ended runs still hold (runs
// the agent died in), before their reports are delivered.
func (a *agent) streamLeftovers(ctx context.Context) {
	if runs, _ := a.store.spooledRuns(); len(runs) == 0 {
		return
	}
	for i := 0; i < streamRoundsPerTick && ctx.Err() == nil && a.streamOutput(ctx); i++ {
	}
}

// streamSend is what one round sends of one run: its stream's bytes
// [from, to), as the chunks [first, first+n) of the request.
type streamSend struct {
	run      int64
	sp       *spool // nil: a leftover, its run has ended
	dir      string
	from, to int64
	end      int64 // the spool's end when read
	first, n int
}

// streamOutput is one round of the sender: one agent.output request with
// what every spool holds past what the server accepted, and its answer
// taken in. It reports whether to go again at once: the request could not
// take everything, or the server asked for bytes again.
func (a *agent) streamOutput(ctx context.Context) (again bool) {
	st := &a.stream
	st.mu.Lock()
	defer st.mu.Unlock()
	runs, err := a.store.spooledRuns()
	if err != nil || len(runs) == 0 {
		return false
	}
	if st.budget <= 0 {
		st.budget = streamCallBytes
	}
	chunkMax := min(api.MaxOutputChunk, st.budget)
	var chunks []api.OutputChunk
	var sends []streamSend
	used := 0
	for _, run := range runs {
		sp := st.live[run]
		dir := a.store.spoolPath(run)
		if sp == nil && (st.off.Load() || !a.store.finished(run)) {
			// Its report has left the outbox (or there is no server to
			// stream to): the spool has served.
			a.dropSpool(run)
			continue
		}
		if sp != nil && sp.stopped.Load() {
			a.toldStopped(run, sp)
			continue
		}
		room := min(st.budget-used, (api.MaxChunksPerCall-len(chunks))*chunkMax)
		if room < utf8.UTFMax {
			again = true
			continue
		}
		acked := readAcked(dir)
		if sp != nil {
			acked = sp.acked.Load()
		}
		data, end, err := readSpool(dir, acked, room)
		switch {
		case errors.Is(err, errSpoolGap):
			a.stopStreaming(run, sp, fmt.Sprintf("the server needs its output from offset %d on, which the spool no longer holds", acked))
			continue
		case err != nil:
			a.log.Debug("cannot read the output spool; trying again", "run", run, "err", err)
			continue
		case sp == nil && acked >= end:
			a.dropSpool(run) // the server has it all
			continue
		case len(data) == 0:
			continue
		case acked+int64(len(data)) > api.MaxOutputOffset:
			a.stopStreaming(run, sp, "its output passed the largest offset agent.output takes")
			continue
		case !utf8.RuneStart(data[0]):
			a.stopStreaming(run, sp, fmt.Sprintf("the server asked for output from offset %d, inside a character", acked))
			continue
		}
		s := streamSend{run: run, sp: sp, dir: dir, from: acked, end: end, first: len(chunks)}
		off := acked
		for len(data) > 0 && len(chunks) < api.MaxChunksPerCall {
			n := min(len(data), chunkMax)
			if n < len(data) {
				for n > 0 && !utf8.RuneStart(data[n]) {
					n--
				}
			}
			chunks = append(chunks, api.OutputChunk{RunID: runName(run), Offset: int(off), Data: string(data[:n])})
			off += int64(n)
			used += n
			data = data[n:]
		}
		s.to, s.n = off, len(chunks)-s.first
		if off < end {
			again = true // more than one request takes
		}
		sends = append(sends, s)
	}
	if len(chunks) == 0 {
		return again
	}
	syncDir(a.store.path(streamDir))

	cctx, cancel := context.WithTimeout(ctx, streamCallTimeout)
	var acks []api.OutputAck
	err = a.rpc.Call(cctx, api.MethodOutput, &acks, chunks)
	cancel()
	if err != nil {
		switch {
		case methodUnknown(err):
			st.off.Store(true)
			a.log.Info("the server does not take live output (an older server); not streaming output any more, final reports carry it", "err", err)
			for _, sp := range st.live {
				sp.stop("the server does not take live output")
				sp.told.Store(true)
			}
		case api.FaultCode(err) == faultTooLarge && st.budget > minStreamCallBytes:
			st.budget = max(st.budget/2, minStreamCallBytes)
			a.log.Debug("live output request too large; sending less at once", "bytes", st.budget, "err", err)
		default:
			a.log.Debug("live output not sent; trying again", "err", err)
		}
		return false
	}
	for _, s := range sends {
		if a.tookAcks(s, chunks, acks) {
			again = true
		}
	}
	return again
}

// tookAcks takes in the server's answer for the chunks of one run and
// reports whether the server asked for bytes again.
func (a *agent) tookAcks(s streamSend, chunks []api.OutputChunk, acks []api.OutputAck) (resend bool) {
	var last *api.OutputAck
	stop, refused := false, ""
	for i := s.first; i < s.first+s.n && i < len(acks); i++ {
		ack := &acks[i]
		if ack.RunID != "" && ack.RunID != chunks[i].RunID {
			continue // not an answer for this chunk
		}
		last = ack
		stop = stop || ack.Stop
		if !ack.Accepted && ack.Error != "" {
			refused = ack.Error
		}
	}
	switch {
	case last == nil:
		a.log.Debug("no answer for the live output of a run; sending it again", "run", s.run)
		return false
	case stop:
		a.stopStreaming(s.run, s.sp, "the server wants no more of it (the run is final there, or not this agent's)")
		return false
	case last.Offset < 0:
		return false
	}
	acked := int64(last.Offset)
	if acked != s.from {
		if s.sp != nil {
			s.sp.acked.Store(acked)
		}
		if err := writeAcked(s.dir, acked); err != nil && s.sp != nil {
			a.log.Debug("cannot record what the server accepted of the output", "run", s.run, "err", err)
		}
	}
	switch {
	case acked < s.from:
		a.log.Debug("the server misses output before what was sent; sending again from its offset", "run", s.run,
			"sent_from", s.from, "offset", acked)
		return true
	case acked < s.to && refused != "":
		a.log.Debug("live output refused; trying again", "run", s.run, "offset", acked, "err", refused)
	case s.sp == nil && acked >= s.end:
		a.dropSpool(s.run) // the server has it all
	}
	return false
}

// stopStreaming sends no more of run's output: a running job's spool goes
// on keeping its head and tail (the crash record), a leftover is dropped.
func (a *agent) stopStreaming(run int64, sp *spool, why string) {
	if sp == nil {
		a.log.Debug("output of an ended run not streamed further; its report carries it", "run", run, "why", why)
		a.dropSpool(run)
		return
	}
	sp.stop(why)
	a.toldStopped(run, sp)
}

// toldStopped logs, once, that a running job's output is no longer
// streamed.
func (a *agent) toldStopped(run int64, sp *spool) {
	if sp.told.CompareAndSwap(false, true) {
		a.log.Info("live output of the run stopped; its final report carries the output", "run", run, "why", sp.reason())
	}
}

func (a *agent) dropSpool(run int64) {
	if err := a.store.removeSpool(run); err != nil {
		a.log.Warn("cannot remove an output spool", "run", run, "err", err)
	}
}

// methodUnknown reports the fault of a server that does not know the
// method called (xmlrpc: 404, "method not found").
func methodUnknown(err error) bool {
	f, ok := api.AsFault(err)
	return ok && f.Code == faultNotFound && strings.Contains(f.Message, "method not found")
}

// readSpool returns the bytes of the spool in dir from offset from on, at
// most limit of them, ending at a character boundary, and the end of the
// stream on disk. Each segment is fsynced before it is read, and the
// directory after, so that what is sent is on disk. errSpoolGap: the
// segment holding from is gone.
func readSpool(dir string, from int64, limit int) ([]byte, int64, error) {
	segs, err := segments(dir)
	if err != nil || len(segs) == 0 {
		return nil, 0, err
	}
	end := segs[len(segs)-1].end()
	if from >= end {
		return nil, end, nil
	}
	i := 0
	for i < len(segs) && segs[i].end() <= from {
		i++
	}
	if i == len(segs) || segs[i].start > from {
		return nil, end, errSpoolGap
	}
	var data []byte
	for pos := from; i < len(segs) && segs[i].start <= pos && len(data) < limit; i++ {
		g := segs[i]
		if pos >= g.end() {
			continue
		}
		b, err := readSynced(g, pos, min(g.end()-pos, int64(limit-len(data))))
		data = append(data, b...)
		pos += int64(len(b))
		if err != nil {
			if len(data) == 0 {
				if errors.Is(err, os.ErrNotExist) {
					err = errSpoolGap
				}
				return nil, end, err
			}
			break
		}
		if pos < g.end() {
			break
		}
	}
	syncDir(dir)
	return trimPartialRune(data), end, nil
}

// readSynced fsyncs segment g and reads n bytes of it from stream offset
// pos.
func readSynced(g segment, pos, n int64) ([]byte, error) {
	f, err := os.Open(g.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	m, err := f.ReadAt(b, pos-g.start)
	if err == io.EOF && m > 0 {
		err = nil
	}
	return b[:m], err
}

// syncDir fsyncs a directory, making the names in it durable. Best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
