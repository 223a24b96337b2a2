package blacklist

import (
	"slices"
	"strings"
	"testing"
)

// BenchmarkMatch measures the check the server makes before every operation,
// against a blacklist of 30 entries, a third of them globs.
func BenchmarkMatch(b *testing.B) {
	ps := append(slices.Clone(known[:20]), "acl.*", "group.*", "user.*", "*.remove", "blacklist.*",
		"ops.c*", "system.*", "*.delete", "client.re*", "*.migrate")
	l, err := Parse("bench", []byte(strings.Join(ps, "\n")), known)
	if err != nil {
		b.Fatal(err)
	}
	if n := len(l.Entries()); n != 30 {
		b.Fatalf("%d entries", n)
	}
	for _, bc := range []struct{ name, op string }{
		{"exact-first", "job.submit"},
		{"exact-last", "client.delete"},
		{"glob", "system.multicall"},
		{"miss", "agent.poll"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				l.Match(bc.op)
			}
		})
	}
}
