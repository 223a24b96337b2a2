package gate

import (
	"context"
	"testing"
)

func BenchmarkEnterReleaseUncontended(b *testing.B) {
	g := New(Options{})
	ctx := context.Background()
	r := Request{Name: "job.list", Class: NonModifier, User: "bench"}
	b.ReportAllocs()
	for b.Loop() {
		t, err := g.Enter(ctx, r)
		if err != nil {
			b.Fatal(err)
		}
		t.Release()
	}
}

func BenchmarkEnterReleaseNonModifier(b *testing.B) {
	g := New(Options{})
	ctx := context.Background()
	r := Request{Name: "job.list", Class: NonModifier, User: "bench"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t, err := g.Enter(ctx, r)
			if err != nil {
				b.Error(err)
				return
			}
			t.Release()
		}
	})
}

// 1% modifiers: the others queue behind each one (FIFO).
func BenchmarkEnterReleaseMixed(b *testing.B) {
	g := New(Options{})
	ctx := context.Background()
	read := Request{Name: "job.list", Class: NonModifier, User: "bench"}
	write := Request{Name: "job.submit", Class: Modifier, User: "bench"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r := read
			if i++; i%100 == 0 {
				r = write
			}
			t, err := g.Enter(ctx, r)
			if err != nil {
				b.Error(err)
				return
			}
			t.Release()
		}
	})
}
