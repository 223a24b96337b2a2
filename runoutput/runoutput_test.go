package runoutput

import (
	"fmt"
	"strings"
	"testing"
)

func TestBoundKeepsBothHalves(t *testing.T) {
	const max = 1 << 20
	var b strings.Builder
	for i := 0; b.Len() < 5<<20; i++ {
		fmt.Fprintf(&b, "line %07d of the output\n", i)
	}
	s := b.String()
	k := Bound(s, max)
	if k.Head != s[:max/2] || k.Tail != s[len(s)-max/2:] || k.Omitted != int64(len(s)-max) {
		t.Fatalf("head %d, tail %d, omitted %d of %d", len(k.Head), len(k.Tail), k.Omitted, len(s))
	}
	out := k.String()
	want := s[:max/2] + "\n[... " + fmt.Sprint(len(s)-max) + " bytes omitted ...]\n" + s[len(s)-max/2:]
	if out != want {
		t.Fatal("rendered output is not head, marker line, tail")
	}
	if got := Parse(out); got != k {
		t.Fatalf("Parse(String) = %d/%d/%d, want %d/%d/%d", len(got.Head), got.Omitted, len(got.Tail), len(k.Head), k.Omitted, len(k.Tail))
	}
	if k.Size() != int64(len(s)) || !k.Truncated() {
		t.Fatal("size")
	}
	if small := Bound("short", max); small.Truncated() || small.String() != "short" || Parse("short") != small {
		t.Fatalf("short output: %+v", small)
	}
}

func TestBoundCutsAtCharacters(t *testing.T) {
	s := strings.Repeat("é", 100) // 2 bytes each
	k := Bound(s, 51)             // halves of 25 bytes: 12 characters each
	if k.Head != strings.Repeat("é", 12) || k.Tail != strings.Repeat("é", 12) || k.Omitted != 200-48 {
		t.Fatalf("%q %d %q", k.Head, k.Omitted, k.Tail)
	}
}

func TestParseRoundTrips(t *testing.T) {
	for _, k := range []Kept{
		{Head: "a\n", Omitted: 5, Tail: "z\n"},
		{Head: "abc", Omitted: 1, Tail: "xyz"},
		{Head: "", Omitted: 9, Tail: "end"},
		{Head: "abc\n", Omitted: 3},
		{Head: "only"},
	} {
		if got := Parse(k.String()); got != k {
			t.Errorf("Parse(%q) = %+v, want %+v", k.String(), got, k)
		}
	}
	// Not a marker: mid-line, malformed, or two of them.
	for _, s := range []string{"x[... 5 bytes omitted ...]\ny", "[... five bytes omitted ...]\n", "[... 5 bytes omitted ...]\na\n[... 6 bytes omitted ...]\n"} {
		if got := Parse(s); got.Omitted != 0 || got.Head != s {
			t.Errorf("Parse(%q) = %+v", s, got)
		}
	}
}

func TestRebound(t *testing.T) {
	s := strings.Repeat("0123456789", 100) // 1000 bytes
	agent := Bound(s, 400)                 // 200 + 600 omitted + 200
	server := agent.Rebound(100)           // 50 + 900 + 50
	if server.Head != s[:50] || server.Tail != s[950:] || server.Omitted != 900 {
		t.Fatalf("%+v", server)
	}
	if same := agent.Rebound(1000); same != agent {
		t.Fatalf("a larger bound changed it: %+v", same)
	}
	if whole := (Kept{Head: s}).Rebound(100); whole != Bound(s, 100) {
		t.Fatal("rebound of a whole output")
	}
}

// Since gives what follows an offset of the whole stream, for every
// offset, whether the bytes there were kept or dropped.
func TestSince(t *testing.T) {
	s := strings.Repeat("abcdefghij", 10) // 100 bytes
	k := Bound(s, 40)                     // 20 + 60 + 20
	for off := int64(0); off <= 110; off++ {
		got := k.Since(off)
		var want string
		switch {
		case off >= 100:
			want = ""
		case off <= 20:
			want = Kept{Head: s[off:20], Omitted: 60, Tail: s[80:]}.String()
		case off < 80:
			want = Marker(80-off) + s[80:]
		default:
			want = s[off:]
		}
		if got != want {
			t.Fatalf("Since(%d) = %q, want %q", off, got, want)
		}
	}
	whole := Kept{Head: s}
	if whole.Since(95) != "fghij" || whole.Since(-1) != s {
		t.Fatal("Since of a whole output")
	}
}

func TestValidChunk(t *testing.T) {
	if ValidChunk("ok é") != nil || ValidChunk("\xc3") == nil {
		t.Fatal("ValidChunk")
	}
}

// A stream kept as chunks, pruned as the server prunes it, reads like the
// whole stream bounded, and followers read it from any chunk boundary.
func TestChunks(t *testing.T) {
	const max = 100
	var chunks []Chunk
	var whole strings.Builder
	size := int64(0)
	for i := 0; i < 40; i++ {
		c := Chunk{Offset: size, Data: fmt.Sprintf("chunk %02d\n", i)} // 9 bytes
		chunks = append(chunks, c)
		whole.WriteString(c.Data)
		size = c.End()
		from, to := Dropped(size, max)
		kept := chunks[:0]
		for _, c := range chunks {
			if !(c.Offset >= from && c.End() <= to) {
				kept = append(kept, c)
			}
		}
		chunks = kept
	}
	s := whole.String()
	k := FromChunks(chunks, size)
	if k.Size() != size || k.Omitted == 0 {
		t.Fatalf("kept %+v of %d", k, size)
	}
	if got, want := k.Rebound(max), Bound(s, max); got != want {
		t.Fatalf("rebound chunks %+v, want %+v", got, want)
	}
	if !strings.HasPrefix(s, k.Head) || !strings.HasSuffix(s, k.Tail) {
		t.Fatal("head or tail is not the stream's")
	}
	for _, since := range []int64{0, 9, 18, 54, int64(len(k.Head)), size - 18, size} {
		var after []Chunk
		for _, c := range chunks {
			if c.End() > since {
				after = append(after, c)
			}
		}
		if got, want := SinceChunks(after, since), k.Since(since); got != want {
			t.Fatalf("SinceChunks(%d) = %q, want %q", since, got, want)
		}
	}
	if whole := FromChunks([]Chunk{{0, "ab"}, {2, "cd"}}, 4); whole != (Kept{Head: "abcd"}) {
		t.Fatalf("%+v", whole)
	}
}
