// Package runoutput is how a run's output is kept (docs/protocol.md,
// "Output"): bounded, with both ends. The end of a log is where the error
// is, so a run that writes more than the bound keeps the first half and the
// last half of it, with one marker line between them that says how much is
// missing:
//
//	first half of the bound
//	[... 123456 bytes omitted ...]
//	last half of the bound
//
// The agent bounds what it holds this way, the server what it stores; both
// count offsets in the bytes of the stream the script wrote (made valid
// UTF-8 and XML-safe as it was read), so a reader that has seen the first n
// bytes can ask for what follows (Since), whatever was cut meanwhile.
package runoutput

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultMax is the default bound: 1 MiB.
const DefaultMax = 1 << 20

// Kept is a bounded output: its first bytes (Head), how many bytes after
// them were dropped (Omitted), and its last bytes (Tail). When nothing was
// dropped, Tail is empty and Head is the whole output. The zero Kept is an
// empty output.
type Kept struct {
	Head    string
	Omitted int64
	Tail    string
}

// Size is the length of the whole output the Kept stands for.
func (k Kept) Size() int64 { return int64(len(k.Head)) + k.Omitted + int64(len(k.Tail)) }

// Truncated reports whether bytes were dropped.
func (k Kept) Truncated() bool { return k.Omitted > 0 }

// String renders the output: whole, or head, marker line, tail. The
// marker always starts a line of its own: a newline goes before it (after
// a head that ended with one too, an empty line shows), so that Parse
// gives back exactly the head it was made from.
func (k Kept) String() string {
	if k.Omitted == 0 {
		return k.Head + k.Tail
	}
	var b strings.Builder
	b.Grow(len(k.Head) + len(k.Tail) + 40)
	b.WriteString(k.Head)
	if k.Head != "" {
		b.WriteByte('\n')
	}
	b.WriteString(Marker(k.Omitted))
	b.WriteString(k.Tail)
	return b.String()
}

// Marker is the line that stands for omitted bytes, newline included.
func Marker(omitted int64) string {
	return "[... " + strconv.FormatInt(omitted, 10) + " bytes omitted ...]\n"
}

// Bound keeps s within max bytes: all of it when it fits, else its first
// and last max/2 bytes (cut at character boundaries, so either may be a
// few bytes shorter). A max below 2 keeps nothing but the count.
func Bound(s string, max int) Kept {
	if len(s) <= max {
		return Kept{Head: s}
	}
	half := max / 2
	head := cutHead(s, half)
	tail := cutTail(s, half)
	return Kept{Head: head, Omitted: int64(len(s) - len(head) - len(tail)), Tail: tail}
}

// Rebound bounds a Kept again to max (a server whose bound is smaller than
// the agent's), counting what it drops on top of what was dropped before.
func (k Kept) Rebound(max int) Kept {
	if k.Omitted == 0 {
		return Bound(k.Head, max)
	}
	half := max / 2
	head, tail := k.Head, k.Tail
	if len(head) > half {
		head = cutHead(head, half)
	}
	if len(tail) > half {
		tail = cutTail(tail, half)
	}
	return Kept{Head: head, Omitted: k.Size() - int64(len(head)) - int64(len(tail)), Tail: tail}
}

// Parse reads a rendered output back: the one marker line it holds, if
// any, splits it into head and tail. An output without a marker is all
// head. A marker the output itself happens to contain is taken for one
// only when it is the only one (a script printing such lines on purpose
// can fool it; the count then is the script's).
func Parse(s string) Kept {
	i := strings.Index(s, "[... ")
	if i < 0 || (i > 0 && s[i-1] != '\n') {
		return Kept{Head: s}
	}
	rest := s[i+len("[... "):]
	num, after, ok := strings.Cut(rest, " bytes omitted ...]\n")
	if !ok {
		return Kept{Head: s}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || strings.Contains(after, "\n[... ") {
		return Kept{Head: s}
	}
	head := ""
	if i > 0 {
		head = s[:i-1] // without the newline String put before the marker
	}
	return Kept{Head: head, Omitted: n, Tail: after}
}

// Since returns what follows the first offset bytes of the output k
// stands for: the rest of the head, the marker and the tail when offset
// falls before the omitted bytes; the tail's part after offset when it
// falls in the tail; a marker for what is gone and the tail when offset
// falls among the omitted bytes. An offset at or past the end is "".
func (k Kept) Since(offset int64) string {
	if offset < 0 {
		offset = 0
	}
	head := int64(len(k.Head))
	tailStart := head + k.Omitted
	switch {
	case offset >= k.Size():
		return ""
	case k.Omitted == 0:
		return (k.Head + k.Tail)[offset:]
	case offset <= head:
		return Kept{Head: k.Head[offset:], Omitted: k.Omitted, Tail: k.Tail}.String()
	case offset < tailStart:
		return Marker(tailStart-offset) + k.Tail
	}
	return k.Tail[offset-tailStart:]
}

// cutHead returns the longest prefix of s of at most n bytes that ends at a
// character boundary.
func cutHead(s string, n int) string {
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// cutTail returns the longest suffix of s of at most n bytes that starts
// at a character boundary.
func cutTail(s string, n int) string {
	if n >= len(s) {
		return s
	}
	i := len(s) - n
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return s[i:]
}

// ValidChunk checks a chunk of streamed output before it is stored: valid
// UTF-8, which the agent guarantees by cutting chunks at character
// boundaries.
func ValidChunk(data string) error {
	if !utf8.ValidString(data) {
		return fmt.Errorf("not valid UTF-8")
	}
	return nil
}

// Chunk is a piece of a run's output stream as the server keeps it while
// the run goes on: Data starts at byte Offset of the stream.
type Chunk struct {
	Offset int64
	Data   string
}

// End is the offset just past the chunk.
func (c Chunk) End() int64 { return c.Offset + int64(len(c.Data)) }

// Dropped says which chunks a stream of size bytes no longer keeps under
// bound max: those lying wholly in [from, to), between the first half of
// the bound and the last. Whole chunks are kept or dropped (each is valid
// UTF-8), so a stream keeps a little more than max, never less; the
// reader's Rebound cuts it to exactly max. from >= to: none.
func Dropped(size int64, max int) (from, to int64) {
	half := int64(max / 2)
	return half, size - half
}

// FromChunks is the output a stream's kept chunks (in offset order) stand
// for: the chunks that follow each other from offset 0 are the head, the
// rest the tail, and the bytes between them are omitted. size is the
// stream's length.
func FromChunks(chunks []Chunk, size int64) Kept {
	var head, tail strings.Builder
	next := int64(0)
	gap := false
	for _, c := range chunks {
		if !gap && c.Offset > next {
			gap = true
		}
		if gap {
			tail.WriteString(c.Data)
		} else {
			head.WriteString(c.Data)
			next = c.End()
		}
	}
	k := Kept{Head: head.String(), Tail: tail.String()}
	k.Omitted = size - int64(len(k.Head)) - int64(len(k.Tail))
	if k.Omitted <= 0 { // nothing dropped (a tail without a gap is none)
		return Kept{Head: k.Head + k.Tail}
	}
	return k
}

// SinceChunks is what follows offset since in a stream, from the kept
// chunks that end after it (in offset order): their bytes from since on,
// with a marker line for each run of dropped bytes before or between
// them. A since in the middle of a chunk is moved to the next character.
func SinceChunks(chunks []Chunk, since int64) string {
	var b strings.Builder
	cur := since
	for _, c := range chunks {
		if c.End() <= cur {
			continue
		}
		if c.Offset > cur {
			if b.Len() > 0 {
				b.WriteByte('\n') // as String puts it
			}
			b.WriteString(Marker(c.Offset - cur))
			cur = c.Offset
		}
		b.WriteString(cutTail(c.Data, int(c.End()-cur)))
		cur = c.End()
	}
	return b.String()
}
