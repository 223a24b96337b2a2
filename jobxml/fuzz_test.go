package jobxml

import (
	"errors"
	"testing"
	"time"
)

// FuzzJobRoundTrip: every script (and name and interpreter) that XML can
// carry comes back byte for byte; every one it cannot is refused by the
// encoder, never written.
func FuzzJobRoundTrip(f *testing.F) {
	for _, c := range hostile() {
		if len(c.text) < 4096 {
			f.Add(c.text, "uptime", "/bin/sh", int64(5), uint32(300))
		}
	}
	for _, c := range forbidden {
		f.Add("echo "+c.text, "n"+c.text, "/bin/sh", int64(-1), uint32(0))
	}
	f.Fuzz(func(t *testing.T, script, name, interp string, prio int64, timeout uint32) {
		j := Job{ID: 1, Run: 2, Attempt: 1, Name: name, Permission: "run", Priority: int(prio),
			SubmittedBy: "alice", Timeout: time.Duration(timeout) * time.Second, Interpreter: interp, Script: script}
		b, err := EncodeJob(j)
		valid := interp != "" && ValidateText("", script) == nil && ValidateText("", name) == nil && ValidateText("", interp) == nil
		if !valid {
			if err == nil {
				t.Fatalf("encoded text XML cannot carry:\n%q", b)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeJob(b)
		if err != nil {
			t.Fatalf("%v\n%q", err, b)
		}
		if got != j {
			t.Fatalf("round trip changed the job\n got %+v\nwant %+v\n%q", got, j, b)
		}
	})
}

func statusSeeds(f *testing.F) {
	f.Add([]byte(baseStatusDoc))
	f.Add([]byte(baseJobDoc))
	f.Add([]byte(`<statuses version="1"><status run="1" state="running" started="2026-11-22T10:00:00.5+02:00"/>` +
		`<status run="2" state="failed" finished="2026-11-22T10:00:01Z" reason="timeout"><output truncated="true">a&#xD;<![CDATA[]]]]><![CDATA[>]]></output></status></statuses>`))
	f.Add([]byte(`<?xml version="1.0"?><!-- c --><status version="1" run="3" state="failed" exit="-1" finished="9999-12-31T23:59:59Z"/>`))
	f.Add([]byte(`<!DOCTYPE status [<!ENTITY a "b">]><status run="1" state="running">&a;</status>`))
	f.Add([]byte("\uFEFF<status run=\"1\" state=\"running\"><output>&#xD800;</output></status>"))
}

// FuzzDecodeStatuses: the decoder never panics, refuses with an *Error, and
// whatever it accepts encodes again and decodes to the same statuses.
func FuzzDecodeStatuses(f *testing.F) {
	statusSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ss, err := DecodeStatuses(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || ss != nil {
				t.Fatalf("refusal %T %v with %d statuses", err, err, len(ss))
			}
			return
		}
		b, err := EncodeStatuses(ss)
		if err != nil {
			t.Fatalf("decoded statuses do not encode: %v\n%q", err, data)
		}
		again, err := DecodeStatuses(b)
		if err != nil || len(again) != len(ss) {
			t.Fatalf("re-encoded document refused: %v\n%q", err, b)
		}
		for i := range ss {
			if !statusEqual(ss[i], again[i]) {
				t.Fatalf("status %d changed: %+v → %+v", i, ss[i], again[i])
			}
		}
	})
}

// FuzzDecodeJob: the same guarantees for job documents.
func FuzzDecodeJob(f *testing.F) {
	f.Add([]byte(baseJobDoc))
	f.Add([]byte(baseStatusDoc))
	f.Add([]byte(`<job attempt="1" run="2" id="3" version="1"><script interpreter="sh">a&#xD;<![CDATA[]]]]><![CDATA[>]]></script><name/><priority>-1</priority><permission>p</permission><submitted-by/></job>`))
	f.Add([]byte(`<job version="2"/>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := DecodeJob(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || j != (Job{}) {
				t.Fatalf("refusal %T %v with %+v", err, err, j)
			}
			return
		}
		b, err := EncodeJob(j)
		if err != nil {
			t.Fatalf("decoded job does not encode: %v\n%q", err, data)
		}
		if again, err := DecodeJob(b); err != nil || again != j {
			t.Fatalf("re-encoded job changed: %v\n%+v\n%+v", err, j, again)
		}
	})
}
