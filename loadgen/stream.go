package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/jobxml"
)

// Streaming (Options.Stream): what a fleet sending live output costs the
// dispatch path. Before the measurement, Streamers extra agents register
// and are accepted like the others; each is submitted one no-op job,
// claims it (agent.getJobs), acknowledges it and reports it running, as a
// real agent does when it starts a long job. While the jobs are measured,
// each sends about once a second one agent.output call carrying a second
// of its job's output: its share of Stream, as lines of text cut into
// chunks of at most api.MaxOutputChunk, from the offset the server
// acknowledged. Their first calls are spread evenly over the first second
// and each later one is jittered ±10%, so they do not all arrive at once;
// and so, by any time T into the measurement, the streamers together have
// offered about Stream×T bytes (within a streamer's share or so).
//
// A chunk the server did not take (Accepted false) is sent again at once
// from the answer's offset; a call that failed leaves its output to the
// next tick's call, which carries the backlog too, as an agent reading a
// pipe would (so does a call that took longer than a second); a streamer
// the server tells to stop (Stop) stops. After the measurement every
// streamer reports its run succeeded, so that its client can be deleted
// (a run in flight would keep it) and a kept server holds no run that
// never ends.
//
// The streamers are not among the agents: their jobs are not among the
// measured ones, and they poll for nothing else while they stream.

// DefaultStreamers is Options.Streamers' default.
const DefaultStreamers = 32

// streamCallBytes bounds the data of one agent.output call, below the
// server's default request body limit (16 MiB) with room to spare; a
// streamer's share of Stream must fit in it.
const streamCallBytes = 8 << 20

// streamCallsPerTick bounds the calls a streamer makes at one tick to
// catch up with a backlog (or resend what the server did not take).
const streamCallsPerTick = 3

// validateStream checks the streaming options (after defaults).
func (o Options) validateStream() error {
	switch {
	case o.Stream < 0:
		return fmt.Errorf("stream %d: want a rate above 0 bytes/s", o.Stream)
	case o.Stream == 0 && o.Streamers != 0:
		return fmt.Errorf("streamers %d: applies with stream (the total rate) only", o.Streamers)
	case o.Stream == 0:
		return nil
	case o.Streamers < 1 || o.Streamers > 10000:
		return fmt.Errorf("streamers %d: want 1..10000", o.Streamers)
	case o.Mode == Idle || o.Mode == Fanout:
		return fmt.Errorf("stream measures what streaming output costs dispatch: use it with the burn-down or steady mode, not %s", o.Mode)
	case o.Stream < int64(o.Streamers):
		return fmt.Errorf("stream %d bytes/s over %d streamers: want at least 1 byte/s for each", o.Stream, o.Streamers)
	case o.Stream/int64(o.Streamers) > streamCallBytes:
		return fmt.Errorf("stream %d bytes/s over %d streamers: %d bytes/s each is more than one agent.output call of the bench carries (%d): add streamers",
			o.Stream, o.Streamers, o.Stream/int64(o.Streamers), streamCallBytes)
	}
	return nil
}

// streamer is one streaming agent with its running job.
type streamer struct {
	name string
	id   string // client id
	fp   string
	c    *client.Client
	run  int64 // its run, once claimed
	// rate is its share of Stream, bytes per second.
	rate    int64
	started time.Time // when it reported the run running

	// Written by its own goroutine only; read after it stopped.
	offset int64 // how much of the run's output the server has
	calls  int64
	lat    []time.Duration
	errs   map[string]int64
	done   bool // told to stop, or at api.MaxOutputOffset
	full   bool // stopped at api.MaxOutputOffset
}

// streaming is the streamers' state during the measurement.
type streaming struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	start    time.Time
	end      time.Time
	stored   atomic.Int64 // bytes acknowledged, for the progress lines
	finished bool         // the runs were reported succeeded
}

// setupStreamers creates, registers and accepts the streamers, submits
// one job for each, and has each claim, acknowledge and start it.
func (b *bench) setupStreamers(ctx context.Context) error {
	n := b.o.Streamers
	b.printf("registering %d streamers", n)
	t0 := time.Now()
	b.streamers = make([]*streamer, n)
	for i := range b.streamers {
		rate := b.o.Stream / int64(n)
		if int64(i) < b.o.Stream%int64(n) {
			rate++
		}
		b.streamers[i] = &streamer{name: fmt.Sprintf("bench-%s-stream-%04d", b.runID, i+1), rate: rate, errs: map[string]int64{}}
	}
	err := b.eachStreamer(ctx, func(s *streamer) error {
		c, _, fp, err := b.newIdentity(s.name)
		if err != nil {
			return err
		}
		s.c, s.fp = c, fp
		s.id, err = register(ctx, c, s.name, "")
		return err
	})
	if err != nil {
		return err
	}
	fps := make([]string, n)
	ids := make([]string, n)
	for i, s := range b.streamers {
		fps[i], ids[i] = s.fp, s.id
	}
	for i := 0; i < n; i += 500 {
		if err := b.op.Call(ctx, "client.accept", nil, fps[i:min(i+500, n)]); err != nil {
			return fmt.Errorf("accept the streamers (client.accept): %w", err)
		}
	}
	for i := 0; i < n; i += b.o.SubmitBatch {
		jobs, kinds, err := submitJobs(ctx, b.op, ids[i:min(i+b.o.SubmitBatch, n)], "bench-stream")
		if err != nil {
			return fmt.Errorf("submit the streamers' jobs: %w", err)
		}
		for k, id := range jobs {
			if id == 0 {
				return fmt.Errorf("submit the streamers' jobs: job.submit: %s", kinds[k])
			}
		}
	}
	err = b.eachStreamer(ctx, func(s *streamer) error { return s.startRun(ctx) })
	if err != nil {
		return err
	}
	b.printf("%d streamers registered and running their jobs in %s", n, time.Since(t0).Round(time.Millisecond))
	return nil
}

// eachStreamer calls fn for every streamer, setupConcurrency at once; the
// first error, if any.
func (b *bench) eachStreamer(ctx context.Context, fn func(*streamer) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(b.streamers))
	sem := make(chan struct{}, setupConcurrency)
	for i, s := range b.streamers {
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(s)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("setting up the streamers: %w", err)
	}
	return errors.Join(errs...)
}

// startRun claims the streamer's job, acknowledges it and reports it
// running. The job was just submitted: agent.getJobs is asked again for a
// few seconds before giving up.
func (s *streamer) startRun(ctx context.Context) error {
	var docs []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := s.c.Call(ctx, api.MethodGetJobs, &docs, 1); err != nil {
			return fmt.Errorf("streamer %s: %s: %w", s.name, api.MethodGetJobs, err)
		}
		if len(docs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("streamer %s: %s found no job", s.name, api.MethodGetJobs)
		}
		sleep(ctx, 50*time.Millisecond)
	}
	j, err := jobxml.DecodeJob([]byte(docs[0]))
	if err != nil {
		return fmt.Errorf("streamer %s: job document: %w", s.name, err)
	}
	s.run = j.Run
	run := strconv.FormatInt(j.Run, 10)
	var ack api.AckResult
	if err := s.c.Call(ctx, api.MethodAckJobs, &ack, []string{run}); err != nil {
		return fmt.Errorf("streamer %s: %s: %w", s.name, api.MethodAckJobs, err)
	}
	if len(ack.Stale) > 0 {
		return fmt.Errorf("streamer %s: %s: run %s is stale", s.name, api.MethodAckJobs, run)
	}
	s.started = time.Now().UTC()
	return s.report(ctx, jobxml.Status{Run: s.run, State: jobxml.StateRunning, Started: s.started})
}

// report sends one status of the streamer's run; an error unless accepted.
func (s *streamer) report(ctx context.Context, st jobxml.Status) error {
	doc, err := jobxml.EncodeStatuses([]jobxml.Status{st})
	if err != nil {
		return err
	}
	var rep []api.ReportResult
	if err := s.c.Call(ctx, api.MethodReportStatus, &rep, string(doc)); err != nil {
		return fmt.Errorf("streamer %s: %s %s: %w", s.name, api.MethodReportStatus, st.State, err)
	}
	if len(rep) != 1 || !rep[0].Accepted {
		return fmt.Errorf("streamer %s: %s %s: not accepted: %+v", s.name, api.MethodReportStatus, st.State, rep)
	}
	return nil
}

// startStreaming starts the streamers' loops; stopStreaming ends them.
func (b *bench) startStreaming(ctx context.Context) {
	st := &streaming{stop: make(chan struct{}), start: time.Now()}
	b.streaming = st
	n := int64(len(b.streamers))
	for i, s := range b.streamers {
		first := time.Duration(int64(time.Second) * int64(i) / n)
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			s.loop(ctx, b, st, first)
		}()
	}
}

// stopStreaming stops the streamers; the calls in flight finish first.
func (b *bench) stopStreaming() {
	st := b.streaming
	if st == nil || !st.end.IsZero() {
		return
	}
	close(st.stop)
	st.wg.Wait()
	st.end = time.Now()
}

// loop is one streamer during the measurement: its first call at first,
// then one a second ±10% until stop. At tick k its job has written
// (k+1)×rate bytes; each call sends what the server does not have yet.
func (s *streamer) loop(ctx context.Context, b *bench, st *streaming, first time.Duration) {
	origin := st.start.Add(first)
	for k := int64(0); !s.done; k++ {
		at := origin.Add(time.Duration(k) * time.Second)
		if k > 0 {
			at = at.Add(time.Duration((rand.Float64() - 0.5) * 0.2 * float64(time.Second)))
		}
		if !wait(ctx, time.Until(at), st.stop) {
			return
		}
		// Ticks that passed while a call was slow: their output is due too.
		k = max(k, int64(time.Since(origin)/time.Second))
		due := min((k+1)*s.rate, api.MaxOutputOffset)
		for i := 0; i < streamCallsPerTick && s.offset < due && !s.done && ctx.Err() == nil; i++ {
			if !s.send(ctx, st, due) {
				break
			}
		}
		if s.offset >= api.MaxOutputOffset {
			s.done, s.full = true, true
		}
	}
}

// wait sleeps d; false when stop (or ctx) came first.
func wait(ctx context.Context, d time.Duration, stop <-chan struct{}) bool {
	select {
	case <-stop:
		return false
	default:
	}
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}

// send makes one agent.output call with the output from the server's
// offset up to due (at most streamCallBytes); false when the call failed.
func (s *streamer) send(ctx context.Context, st *streaming, due int64) bool {
	run := strconv.FormatInt(s.run, 10)
	end := min(due, s.offset+streamCallBytes)
	var chunks []api.OutputChunk
	for off := s.offset; off < end; off += api.MaxOutputChunk {
		n := min(end-off, api.MaxOutputChunk)
		chunks = append(chunks, api.OutputChunk{RunID: run, Offset: int(off), Data: streamText(off, n)})
	}
	var acks []api.OutputAck
	s.calls++
	t0 := time.Now()
	err := s.c.Call(ctx, api.MethodOutput, &acks, chunks)
	s.lat = append(s.lat, time.Since(t0))
	if err != nil {
		if ctx.Err() == nil {
			s.errs[api.MethodOutput+": "+errKind(err)]++
		}
		return false
	}
	if len(acks) != len(chunks) {
		s.errs[api.MethodOutput+": bad reply"]++
		return false
	}
	refused := false
	prev := s.offset
	for _, a := range acks {
		if a.Stop {
			s.done = true
		}
		if !a.Accepted {
			refused = true
		}
	}
	// The last answer is the server's size after every chunk of the call:
	// the next chunk starts there (again from there after a refused one).
	s.offset = int64(acks[len(acks)-1].Offset)
	if s.offset > prev {
		st.stored.Add(s.offset - prev)
	}
	switch {
	case s.done:
		s.errs[api.MethodOutput+": told to stop"]++
		return false
	case refused:
		s.errs[api.MethodOutput+": chunk not accepted (sent again from the server's offset)"]++
	}
	return true
}

// streamLine is one line of the streamers' output; streamText repeats it.
const streamLine = "bench output: the quick brown fox jumps over the lazy dog 0123456789\n"

// streamText is the n bytes of a streamer's output from offset off:
// lines of ASCII, so every byte ends a character and the text needs no
// escaping in XML. The same offset always gives the same text, so a
// resend carries what was sent before.
func streamText(off, n int64) string {
	var sb strings.Builder
	sb.Grow(int(n))
	i := int(off % int64(len(streamLine)))
	for rest := int(n); rest > 0; {
		part := streamLine[i:min(len(streamLine), i+rest)]
		sb.WriteString(part)
		rest -= len(part)
		i = 0
	}
	return sb.String()
}

// finishStreamers reports every streamer's run succeeded, once, after the
// measurement (or a failure): a run in flight would keep its client from
// being deleted, and a kept server would hold it running for ever.
func (b *bench) finishStreamers() {
	if len(b.streamers) == 0 || (b.streaming != nil && b.streaming.finished) {
		return
	}
	b.stopStreaming()
	if b.streaming == nil {
		b.streaming = &streaming{}
	}
	b.streaming.finished = true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	zero := 0
	var failed atomic.Int64
	_ = b.eachStreamer(ctx, func(s *streamer) error {
		if s.run == 0 || s.c == nil {
			return nil
		}
		started := s.started
		if started.IsZero() {
			started = time.Now().UTC()
		}
		err := s.report(ctx, jobxml.Status{Run: s.run, State: jobxml.StateSucceeded, Exit: &zero, Started: started, Finished: time.Now().UTC()})
		if err != nil {
			failed.Add(1)
			b.count(api.MethodReportStatus, "streamer's final report: "+errKind(err), 1)
		}
		return nil
	})
	if n := failed.Load(); n > 0 {
		b.printf("warning: %d streamers could not report their runs succeeded: their clients cannot be deleted", n)
	}
}

// collectStreaming adds the streamers' figures to the results (b.mu held).
func (b *bench) collectStreaming() {
	st := b.streaming
	if st == nil || st.start.IsZero() {
		return
	}
	r := b.res
	var bytes, calls int64
	var lat []time.Duration
	full := 0
	for _, s := range b.streamers {
		bytes += s.offset
		calls += s.calls
		lat = append(lat, s.lat...)
		for k, v := range s.errs {
			b.errs[k] += v
		}
		if s.full {
			full++
		}
	}
	if calls > 0 {
		b.calls[api.MethodOutput] += calls
	}
	secs := st.end.Sub(st.start).Seconds()
	l := distribution(lat)
	r.StreamSeconds, r.StreamBytes, r.StreamCalls, r.StreamCallLatency = &secs, &bytes, &calls, &l
	rate := 0.0
	if secs > 0 {
		rate = float64(bytes) / secs
	}
	r.StreamBytesPerSecond = &rate
	if full > 0 {
		b.printf("warning: %d streamers stopped at agent.output's largest offset (%d bytes)", full, int64(api.MaxOutputOffset))
	}
}
