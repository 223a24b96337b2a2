package agent

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/pki"
	"github.com/scirectl/scirectl/runoutput"
)

// A running job's output (docs/protocol.md, "Output") goes through one
// outputWriter, stdout and stderr alike, in the order the script wrote it.
// The writer makes it valid UTF-8 and XML-safe as it reads it (the stream
// the server counts offsets in), keeps its bounded head and tail in memory
// for the final report, and appends it to the run's spool on disk, from
// which the sender (stream.go) streams it to the server and from which a
// restarted agent recovers it when it died while the job ran.
//
// The spool is the directory stream/<run>/: the stream cut in segment files
// named by the offset of their first byte (0, 1048576, …), and the file
// acked, the offset up to which the server has accepted the stream. The
// spool keeps what may still be needed, and nothing more, so that a script
// writing without end cannot fill the disk: the segments holding the first
// and last half of the output limit (what a bounded output keeps), and,
// while the run is streamed, those the server has not accepted yet. The
// others are deleted as the writer moves on to a new segment. The unsent
// part is bounded too: beyond twice the output limit the run is no longer
// streamed (its final report carries its output).

// Files of a spool (see above).
const (
	streamDir = "stream"
	ackedFile = "acked"

	defaultSpoolSegment = 1 << 20
)

// spool is a run's output stream on disk, written by the run's
// outputWriter and read by the sender.
type spool struct {
	dir     string // stream/<run>
	max     int    // the output limit: which segments are kept
	segment int64  // bytes per segment file

	size    atomic.Int64 // bytes of the stream written to disk
	acked   atomic.Int64 // bytes of the stream the server has accepted
	stopped atomic.Bool  // no longer streamed: only head and tail are kept
	why     atomic.Value // string: why it was stopped
	told    atomic.Bool  // the stop was logged

	// The writer's alone (under the outputWriter's lock).
	f        *os.File
	segStart int64   // offset of f's first byte
	starts   []int64 // offsets of the segments on disk, ascending
	err      error   // the first write error: the spool ends there
}

// stop ends the streaming of the run, saying why; the first reason stays.
func (sp *spool) stop(why string) {
	if sp.stopped.CompareAndSwap(false, true) {
		sp.why.Store(why)
	}
}

// reason is why the run is no longer streamed.
func (sp *spool) reason() string {
	s, _ := sp.why.Load().(string)
	return s
}

// write appends sanitized output to the spool. A failure ends the spool
// (and the streaming of the run) but never the script: what it writes is
// still kept in memory for the final report.
func (sp *spool) write(b []byte) {
	for len(b) > 0 && sp.err == nil {
		size := sp.size.Load()
		if sp.f == nil || size-sp.segStart >= sp.segment {
			if err := sp.rotate(size); err != nil {
				sp.fail(err)
				return
			}
		}
		n := int(min(int64(len(b)), sp.segment-(size-sp.segStart)))
		m, err := sp.f.Write(b[:n])
		sp.size.Add(int64(m))
		if err != nil {
			sp.fail(err)
			return
		}
		b = b[n:]
	}
	sp.checkUnsent()
}

// checkUnsent stops the streaming of the run when the server has not
// accepted more than twice the output limit.
func (sp *spool) checkUnsent() {
	if unsent := sp.size.Load() - sp.acked.Load(); unsent > 2*int64(sp.max) && !sp.stopped.Load() {
		sp.stop(fmt.Sprintf("the server has not accepted %d bytes, more than twice the output limit", unsent))
	}
}

func (sp *spool) fail(err error) {
	sp.err = err
	if sp.f != nil {
		sp.f.Close()
		sp.f = nil
	}
	sp.stop("the output spool could not be written: " + err.Error())
}

// rotate starts a new segment at offset at, and deletes the segments no
// longer needed.
func (sp *spool) rotate(at int64) error {
	if sp.f != nil {
		if err := sp.f.Close(); err != nil {
			sp.f = nil
			return err
		}
		sp.f = nil
	}
	f, err := os.OpenFile(filepath.Join(sp.dir, strconv.FormatInt(at, 10)), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	sp.f, sp.segStart = f, at
	sp.starts = append(sp.starts, at)
	sp.checkUnsent()
	sp.prune(at)
	return nil
}

// prune deletes the finished segments that lie wholly between the head
// and the tail of a stream of size bytes and, while it is streamed, wholly
// before what the server has accepted. The deleted ones always form one
// stretch in the middle of the stream, growing forward, so a spool is at
// most a head and a tail with one gap between them.
func (sp *spool) prune(size int64) {
	half, keepTail := int64(sp.max/2), int64(sp.max-sp.max/2)
	streamed, acked := !sp.stopped.Load(), sp.acked.Load()
	kept := sp.starts[:0]
	for i, start := range sp.starts {
		if i == len(sp.starts)-1 {
			kept = append(kept, start) // the one being written
			continue
		}
		end := sp.starts[i+1]
		if start < half || end > size-keepTail || (streamed && end > acked) {
			kept = append(kept, start)
			continue
		}
		os.Remove(filepath.Join(sp.dir, strconv.FormatInt(start, 10)))
	}
	sp.starts = kept
}

func (sp *spool) close() {
	if sp.f != nil {
		sp.f.Close()
		sp.f = nil
	}
}

// outputWriter is the io.Writer a script's stdout and stderr share. It
// never fails a write: a failed write would kill the script with SIGPIPE or
// block it, and neither the output limit nor the disk may change what the
// job does.
type outputWriter struct {
	mu       sync.Mutex
	max      int // the output limit
	half     int // bytes of the head
	keepTail int // bytes of the tail: the rest of max

	// Sanitizing as jobxml.Sanitize does, across writes.
	carry   []byte // an incomplete UTF-8 sequence at the end of the last write
	inBad   bool   // the last byte read was in a run of invalid bytes, already marked
	joined  []byte // scratch: carry and the new bytes
	scratch []byte // scratch: the sanitized bytes

	head []byte // the stream's first half bytes
	tail []byte // the stream's last keepTail bytes (up to twice as many before compacting)
	size int64  // bytes of the stream

	sp     *spool // nil: none
	closed bool
}

func newOutputWriter(limit int, sp *spool) *outputWriter {
	limit = max(limit, 0)
	return &outputWriter{max: limit, half: limit / 2, keepTail: limit - limit/2, sp: sp}
}

func (w *outputWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.sanitize(p, false)
	}
	return len(p), nil
}

// finish ends the stream (an incomplete character left at its end is
// invalid now), closes the spool and returns the output bounded as
// runoutput.Bound bounds the whole stream. Writes after it are dropped.
func (w *outputWriter) finish() runoutput.Kept {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.sanitize(nil, true)
		w.closed = true
		if w.sp != nil {
			w.sp.close()
		}
	}
	return keptOf(w.head, w.tail[max(len(w.tail)-w.keepTail, 0):], w.size, w.max)
}

// spoolError is the error that ended the spool early, if any.
func (w *outputWriter) spoolError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sp == nil {
		return nil
	}
	return w.sp.err
}

// sanitize turns p into the stream's next bytes by jobxml.Sanitize's rules:
// every character XML cannot carry and every maximal run of invalid bytes
// becomes U+FFFD. A run of invalid bytes may span writes (inBad), and a
// character may be split between two writes: an incomplete sequence at the
// end of p waits for the next write (carry), or for the end of the stream
// (final), where it is invalid. So the stream is what Sanitize makes of the
// whole output, however the pipe cut it.
func (w *outputWriter) sanitize(p []byte, final bool) {
	in := p
	if len(w.carry) > 0 {
		w.joined = append(append(w.joined[:0], w.carry...), p...)
		in = w.joined
	}
	out := w.scratch[:0]
	i := 0
	for i < len(in) {
		c := in[i]
		if c < utf8.RuneSelf {
			w.inBad = false
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, c)
			}
			i++
			continue
		}
		if !final && !utf8.FullRune(in[i:]) {
			break // the rest of this character comes with the next write
		}
		r, size := utf8.DecodeRune(in[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			if !w.inBad {
				out = utf8.AppendRune(out, utf8.RuneError)
				w.inBad = true
			}
		case r == 0xFFFE || r == 0xFFFF:
			w.inBad = false
			out = utf8.AppendRune(out, utf8.RuneError)
		default:
			w.inBad = false
			out = append(out, in[i:i+size]...)
		}
		i += size
	}
	w.carry = append(w.carry[:0], in[i:]...)
	w.scratch = out[:0]
	if len(out) > 0 {
		w.emit(out)
	}
}

// emit adds sanitized bytes to the stream: to the head while it is short
// of half the limit, to the rolling tail, and to the spool.
func (w *outputWriter) emit(b []byte) {
	if len(w.head) < w.half {
		n := min(w.half-len(w.head), len(b))
		w.head = append(w.head, b[:n]...)
	}
	switch {
	case w.keepTail == 0:
	case len(b) >= w.keepTail:
		w.tail = append(w.tail[:0], b[len(b)-w.keepTail:]...)
	default:
		w.tail = append(w.tail, b...)
		if len(w.tail) > 2*w.keepTail {
			w.tail = append(w.tail[:0], w.tail[len(w.tail)-w.keepTail:]...)
		}
	}
	w.size += int64(len(b))
	if w.sp != nil {
		w.sp.write(b)
	}
}

// keptOf bounds a stream of size bytes of valid UTF-8 of which head is
// the beginning and tail the end, as runoutput.Bound bounds the whole
// stream: exactly, when head and tail together cover the stream or each
// holds at least half the limit; else as near as they allow.
func keptOf(head, tail []byte, size int64, limit int) runoutput.Kept {
	gap := size - int64(len(head)) - int64(len(tail))
	if gap <= 0 { // the whole stream is known
		var s []byte
		if int64(len(head)) >= size {
			s = head[:size]
		} else {
			s = append(slices.Clip(head), tail[int64(len(tail))-(size-int64(len(head))):]...)
		}
		return runoutput.Bound(string(s), limit)
	}
	half := limit / 2
	if size > int64(limit) && len(head) >= half && len(tail) >= half {
		// Bound's cuts: the head ends, the tail starts, at a character
		// boundary, which in valid UTF-8 is where no character is cut.
		h := trimPartialRune(head[:half])
		t := skipPartialRune(tail[len(tail)-half:])
		return runoutput.Kept{Head: string(h), Omitted: size - int64(len(h)) - int64(len(t)), Tail: string(t)}
	}
	h, t := trimPartialRune(head), skipPartialRune(tail)
	return runoutput.Kept{Head: string(h), Omitted: size - int64(len(h)) - int64(len(t)), Tail: string(t)}.Rebound(limit)
}

// trimPartialRune drops an incomplete UTF-8 sequence at the end of p.
func trimPartialRune(p []byte) []byte {
	for i := 1; i <= utf8.UTFMax && i <= len(p); i++ {
		c := p[len(p)-i]
		if utf8.RuneStart(c) {
			if !utf8.FullRune(p[len(p)-i:]) {
				return p[:len(p)-i]
			}
			return p
		}
	}
	return p
}

// skipPartialRune drops the continuation bytes at the start of p: the end
// of a character that began before it.
func skipPartialRune(p []byte) []byte {
	i := 0
	for i < len(p) && i < utf8.UTFMax && !utf8.RuneStart(p[i]) {
		i++
	}
	return p[i:]
}

// --- the spool on disk ---

func (s *store) spoolPath(run int64) string { return s.path(streamDir, runName(run)) }

// newSpool makes an empty spool for run (a leftover of an earlier try is
// dropped: the stream starts again at 0).
func (s *store) newSpool(run int64, limit int) (*spool, error) {
	dir := s.spoolPath(run)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	seg := s.segment
	if seg <= 0 {
		seg = defaultSpoolSegment
	}
	return &spool{dir: dir, max: limit, segment: seg}, nil
}

// removeSpool deletes run's spool, if any.
func (s *store) removeSpool(run int64) error { return os.RemoveAll(s.spoolPath(run)) }

// spooledRuns lists the runs that have a spool.
func (s *store) spooledRuns() ([]int64, error) {
	ents, err := os.ReadDir(s.path(streamDir))
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, e := range ents {
		id, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || id <= 0 || !e.IsDir() {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// segment is one segment file of a spool.
type segment struct {
	start, size int64
	path        string
}

func (g segment) end() int64 { return g.start + g.size }

// segments lists a spool's segment files in stream order, with their sizes
// now.
func segments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, e := range ents {
		start, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || start < 0 || e.IsDir() {
			continue // acked, a temp file
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // pruned meanwhile
		}
		if err != nil {
			return nil, err
		}
		segs = append(segs, segment{start: start, size: fi.Size(), path: filepath.Join(dir, e.Name())})
	}
	slices.SortFunc(segs, func(a, b segment) int { return cmp.Compare(a.start, b.start) })
	return segs, nil
}

// readAcked reads how much of a spool's stream the server has accepted
// (0 when unknown).
func readAcked(dir string) int64 {
	b, err := os.ReadFile(filepath.Join(dir, ackedFile))
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// writeAcked records durably how much of the stream the server accepted.
func writeAcked(dir string, n int64) error {
	if _, err := os.Stat(dir); err != nil {
		return err // removed meanwhile: do not make it again
	}
	return pki.WriteFile(filepath.Join(dir, ackedFile), []byte(strconv.FormatInt(n, 10)+"\n"), 0o600)
}

// spooledOutput is the output of an ended run read back from its spool,
// bounded to limit as the writer would have: the segments from offset 0
// on are the head, the last ones the tail, the bytes between them
// omitted. A stream cut inside a character (the agent died mid-write) ends
// at the last whole one. ok is false when the run has no spool.
func (s *store) spooledOutput(run int64, limit int) (k runoutput.Kept, ok bool, err error) {
	segs, err := segments(s.spoolPath(run))
	if errors.Is(err, fs.ErrNotExist) {
		return runoutput.Kept{}, false, nil
	}
	if err != nil || len(segs) == 0 {
		return runoutput.Kept{}, err == nil, err
	}
	read := func(gs []segment) ([]byte, error) {
		var b []byte
		for _, g := range gs {
			data, err := os.ReadFile(g.path)
			if err != nil {
				return nil, err
			}
			b = append(b, data...)
		}
		return b, nil
	}
	// The head: the segments that follow each other from offset 0.
	i, pos := 0, int64(0)
	for i < len(segs) && segs[i].start == pos {
		pos = segs[i].end()
		i++
	}
	head, err := read(segs[:i])
	if err != nil {
		return runoutput.Kept{}, true, err
	}
	// The tail: the last segments that follow each other.
	j := len(segs)
	for j > i && (j == len(segs) || segs[j-1].end() == segs[j].start) {
		j--
	}
	tail, err := read(segs[j:])
	if err != nil {
		return runoutput.Kept{}, true, err
	}
	size := int64(len(head))
	if len(tail) > 0 {
		size = segs[j].start + int64(len(tail))
		t := trimPartialRune(tail)
		size -= int64(len(tail) - len(t))
		tail = t
	} else {
		h := trimPartialRune(head)
		size -= int64(len(head) - len(h))
		head = h
	}
	k = keptOf(head, tail, size, limit)
	// The spool holds what the agent sanitized; a damaged disk must not
	// make the report undeliverable.
	k.Head, k.Tail = jobxml.Sanitize(k.Head), jobxml.Sanitize(k.Tail)
	return k, true, nil
}

// withNote ends a run's output with a line of the agent's.
func withNote(out, note string) string {
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	return out + note
}
