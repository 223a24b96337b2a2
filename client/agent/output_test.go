package agent

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/runoutput"
)

// randomOutput is what a script might write: text, multi-byte characters,
// control characters, invalid bytes, U+FFFE, encoded surrogates.
func randomOutput(r *rand.Rand, n int) []byte {
	pieces := [][]byte{
		[]byte("a"), []byte("line\n"), []byte("\t"), []byte("\r\n"), []byte("é"), []byte("€"), []byte("😀"),
		{0x00}, {0x1b}, {0x7f}, {0xff}, {0xc3}, {0xe2, 0x82}, {0x80}, {0xf0, 0x9f, 0x98},
		[]byte("\uFFFE"), []byte("\uFFFF"), []byte("\uFFFD"), {0xed, 0xa0, 0x80}, {0xf4, 0x90, 0x80, 0x80},
	}
	var b []byte
	for len(b) < n {
		if r.IntN(3) == 0 {
			b = append(b, strings.Repeat("x", r.IntN(40))...)
			continue
		}
		b = append(b, pieces[r.IntN(len(pieces))]...)
	}
	return b
}

// writeSplit writes p to w in random pieces (some of one byte, so that
// characters and invalid runs are cut everywhere).
func writeSplit(r *rand.Rand, w *outputWriter, p []byte) {
	for len(p) > 0 {
		n := min(len(p), 1+r.IntN(8))
		if r.IntN(4) == 0 {
			n = min(len(p), 1+r.IntN(3000))
		}
		w.Write(p[:n])
		p = p[n:]
	}
}

// spoolBytes reads a spool's segments back to back.
func spoolBytes(t *testing.T, dir string) string {
	t.Helper()
	segs, err := segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, g := range segs {
		if int64(b.Len()) != g.start {
			t.Fatalf("segment at %d after %d bytes: a gap", g.start, b.Len())
		}
		data, err := os.ReadFile(g.path)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

func testStore(t *testing.T, segment int64, limit int) *store {
	t.Helper()
	s, err := openStore(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	s.segment, s.outputLimit = segment, limit
	return s
}

// The stream is what jobxml.Sanitize makes of the whole output, however
// the writes cut it: characters split between writes stay whole, a run of
// invalid bytes split between writes is one U+FFFD.
func TestOutputSanitizesAcrossWrites(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s := testStore(t, 1<<20, 1<<20)
	for i := range 300 {
		raw := randomOutput(r, r.IntN(5000))
		sp, err := s.newSpool(int64(i+1), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		w := newOutputWriter(1<<20, sp)
		writeSplit(r, w, raw)
		k := w.finish()
		want := jobxml.Sanitize(string(raw))
		if got := k.String(); got != want || k.Truncated() {
			t.Fatalf("case %d: stream\n%q\nwant Sanitize of the whole\n%q", i, got, want)
		}
		if got := spoolBytes(t, sp.dir); got != want {
			t.Fatalf("case %d: spool\n%q\nwant\n%q", i, got, want)
		}
		if !utf8.ValidString(k.String()) || jobxml.ValidateText("output", k.String()) != nil {
			t.Fatalf("case %d: not XML-safe: %q", i, k.String())
		}
	}
}

func TestOutputSplitCharacters(t *testing.T) {
	for _, tc := range []struct {
		writes []string
		want   string
	}{
		{[]string{"a\xc3", "\xa9b"}, "aéb"},                      // é cut in two
		{[]string{"\xf0", "\x9f", "\x98", "\x80!"}, "😀!"},        // a four-byte character in four writes
		{[]string{"x\xe2\x82"}, "x\uFFFD"},                       // cut at the very end: invalid
		{[]string{"x\xff", "\xfe", "\xffy"}, "x\uFFFDy"},         // one run of invalid bytes over three writes
		{[]string{"\xc3", "x"}, "\uFFFDx"},                       // a start byte not followed by its character
		{[]string{"a\x00", "\x1b[0m\n"}, "a\uFFFD\uFFFD[0m\n"},   // control characters
		{[]string{"\xef\xbf", "\xbe."}, "\uFFFD."},               // U+FFFE split
		{[]string{"\xed\xa0", "\x80z"}, "\uFFFDz"},               // an encoded surrogate split
		{[]string{"\xe2\x82", "\xac", "\xe2", "\x82\xac"}, "€€"}, // two € split differently
	} {
		w := newOutputWriter(1000, nil)
		for _, p := range tc.writes {
			w.Write([]byte(p))
		}
		if got := w.finish().String(); got != tc.want || got != jobxml.Sanitize(strings.Join(tc.writes, "")) {
			t.Errorf("writes %q: got %q, want %q", tc.writes, got, tc.want)
		}
	}
}

// Over the limit the output is runoutput.Bound of the stream, for odd and
// even limits, cuts inside characters, and a spool cut in small segments;
// the spool read back after a "crash" bounds to the same, and keeps no more
// on disk than the head, the tail and the unsent bytes.
func TestOutputBoundHeadAndTail(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 300 {
		limit := []int{0, 1, 2, 3, 7, 10, 64, 101, 1000}[r.IntN(9)]
		segment := int64([]int{40, 300, 1 << 20}[r.IntN(3)])
		s := testStore(t, segment, limit)
		raw := randomOutput(r, r.IntN(4000))
		sp, err := s.newSpool(7, limit)
		if err != nil {
			t.Fatal(err)
		}
		w := newOutputWriter(limit, sp)
		writeSplit(r, w, raw)
		stream := jobxml.Sanitize(string(raw))
		want := runoutput.Bound(stream, limit)
		got := w.finish()
		if got != want {
			t.Fatalf("case %d (limit %d, %d bytes): got %+v, want %+v", i, limit, len(stream), got, want)
		}
		if got.Truncated() != (len(stream) > limit) {
			t.Fatalf("case %d: truncated %v for %d bytes over limit %d", i, got.Truncated(), len(stream), limit)
		}
		fromSpool, ok, err := s.spooledOutput(7, limit)
		if err != nil || !ok {
			t.Fatalf("case %d: spooledOutput: %v %v", i, ok, err)
		}
		if fromSpool != want {
			t.Fatalf("case %d (limit %d, segment %d, %d bytes): from the spool %+v, want %+v", i, limit, segment, len(stream), fromSpool, want)
		}
		// Nothing was accepted: at most the unsent twice the limit, plus
		// the segments that straddle the bounds, stay on disk.
		if used := diskUse(t, sp.dir); used > 3*int64(limit)+4*segment {
			t.Fatalf("case %d: spool holds %d bytes for limit %d, segment %d", i, used, limit, segment)
		}
	}
}

func diskUse(t *testing.T, dir string) int64 {
	t.Helper()
	segs, err := segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, g := range segs {
		n += g.size
	}
	return n
}

// Memory and disk stay bounded whatever the script writes: with the server
// unreachable the run stops being streamed once twice the limit is unsent;
// with a server accepting everything, the accepted middle is deleted. Both
// keep head and tail for a crash.
func TestOutputSpoolBounded(t *testing.T) {
	for _, accept := range []bool{false, true} {
		limit, segment := 100_000, int64(8192)
		s := testStore(t, segment, limit)
		sp, err := s.newSpool(9, limit)
		if err != nil {
			t.Fatal(err)
		}
		w := newOutputWriter(limit, sp)
		var all strings.Builder
		chunk := []byte(strings.Repeat("0123456789abcdef", 2048)) // 32 KiB, as a pipe read
		for i := range 300 {
			chunk[0] = byte('A' + i%26)
			w.Write(chunk)
			all.Write(chunk)
			if accept {
				sp.acked.Store(sp.size.Load())
			}
			if len(w.head) > limit/2 || cap(w.tail) > 2*limit+2*len(chunk) {
				t.Fatalf("memory: head %d, tail cap %d", len(w.head), cap(w.tail))
			}
			if used := diskUse(t, sp.dir); used > 3*int64(limit)+2*segment+int64(len(chunk)) {
				t.Fatalf("accept %v: spool holds %d bytes after %d", accept, used, all.Len())
			}
		}
		if sp.stopped.Load() == accept {
			t.Fatalf("accept %v: stopped %v (%s)", accept, sp.stopped.Load(), sp.reason())
		}
		want := runoutput.Bound(all.String(), limit)
		if got := w.finish(); got != want {
			t.Fatalf("accept %v: %+v, want %+v", accept, got, want)
		}
		if got, _, err := s.spooledOutput(9, limit); err != nil || got != want {
			t.Fatalf("accept %v: from the spool %+v (%v), want %+v", accept, got, err, want)
		}
	}
}

// A spool cut mid-character (the agent died mid-write) reads back up to
// its last whole character; a run without a spool has no output.
func TestSpooledOutputTornWrite(t *testing.T) {
	s := testStore(t, 1<<20, 100)
	dir := s.spoolPath(5)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "0"), []byte("done\nhalf \xe2\x82"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, ok, err := s.spooledOutput(5, 100)
	if err != nil || !ok || k.String() != "done\nhalf " {
		t.Fatalf("%+v %v %v", k, ok, err)
	}
	if k, ok, err := s.spooledOutput(6, 100); err != nil || ok || k.String() != "" {
		t.Fatalf("no spool: %+v %v %v", k, ok, err)
	}
}

// BenchmarkOutputWriter is the cost of a script's output on its way to
// the report and the spool: 32 KiB pipe reads of text.
func BenchmarkOutputWriter(b *testing.B) {
	s, err := openStore(b.TempDir(), quiet)
	if err != nil {
		b.Fatal(err)
	}
	sp, err := s.newSpool(1, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	sp.stop("benchmark") // keep head and tail only, as an unstreamed run
	w := newOutputWriter(1<<20, sp)
	chunk := []byte(strings.Repeat("2026-12-06T10:00:00Z INFO something happened, état: ok\n", 600))[:32<<10]
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		w.Write(chunk)
	}
	w.finish()
}
