package jobxml

import (
	"strings"
	"testing"
	"time"
)

func benchJob() Job {
	j := baseJob()
	// 300 bytes of a typical shell script, one "]]>" and a CRLF included so
	// the slow paths of the CDATA writer are in the measurement.
	j.Script = strings.Repeat("#!/bin/sh\nset -eu\nfor f in /var/log/*.log; do wc -l \"$f\"; done\n", 5)[:290] + "]]>\r\necho\n"
	return j
}

func benchStatuses() []Status {
	out := strings.Repeat("line of output ", 14)[:199] + "\n" // 200 bytes
	ss := make([]Status, 100)
	for i := range ss {
		ss[i] = Status{Run: int64(1000 + i), State: StateSucceeded, Exit: intp(0), Started: t0,
			Finished: t1.Add(time.Duration(i) * time.Millisecond), Output: out}
	}
	return ss
}

func BenchmarkEncodeJob(b *testing.B) {
	j := benchJob()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeJob(j); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeJob(b *testing.B) { benchDecodeJob(b, DecodeJob) }

// BenchmarkDecodeJobReference is the encoding/xml decoder DecodeJob
// replaced, on the same document.
func BenchmarkDecodeJobReference(b *testing.B) { benchDecodeJob(b, refDecodeJob) }

func benchDecodeJob(b *testing.B, decode func([]byte) (Job, error)) {
	doc := mustEncodeJob(b, benchJob())
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeStatuses(b *testing.B) {
	ss := benchStatuses()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeStatuses(ss); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeStatuses(b *testing.B) { benchDecodeStatuses(b, DecodeStatuses) }

// BenchmarkDecodeStatusesReference is the encoding/xml decoder
// DecodeStatuses replaced, on the same document.
func BenchmarkDecodeStatusesReference(b *testing.B) { benchDecodeStatuses(b, refDecodeStatuses) }

func benchDecodeStatuses(b *testing.B, decode func([]byte) ([]Status, error)) {
	doc, err := EncodeStatuses(benchStatuses())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(doc); err != nil {
			b.Fatal(err)
		}
	}
}
