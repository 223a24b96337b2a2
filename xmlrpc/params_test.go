package xmlrpc

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func wantFault(t *testing.T, err error, msg string) {
	t.Helper()
	f, ok := err.(*Fault)
	if !ok {
		t.Fatalf("err = %v (%T), want *Fault 400 %q", err, err, msg)
	}
	if f.Code != CodeInvalid || f.Message != msg {
		t.Fatalf("fault %d %q,\nwant 400 %q", f.Code, f.Message, msg)
	}
}

func TestParamsCount(t *testing.T) {
	p := Params{int64(1), "a", true}
	for _, c := range []struct {
		min, max int
		want     string
	}{
		{3, 3, ""},
		{1, 3, ""},
		{0, -1, ""},
		{1, 2, "wrong number of params: got 3, want 1..2"},
		{1, 1, "wrong number of params: got 3, want 1"},
		{4, -1, "wrong number of params: got 3, want at least 4"},
		{0, 0, "wrong number of params: got 3, want 0"},
	} {
		err := p.Count(c.min, c.max)
		if c.want == "" {
			if err != nil {
				t.Errorf("Count(%d, %d) = %v", c.min, c.max, err)
			}
			continue
		}
		wantFault(t, err, c.want)
	}
}

func TestParamsAccessors(t *testing.T) {
	when := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	p := Params{
		"text",                      // 0
		int64(-5),                   // 1
		true,                        // 2
		"9223372036854775807",       // 3
		[]any{"1", int64(2), "30"},  // 4
		map[string]any{"k": "v"},    // 5
		[]any{"a", "b"},             // 6
		nil,                         // 7
		when,                        // 8
		"2024-01-02T04:04:05+01:00", // 9
		2.5,                         // 10
	}
	if s, err := p.String(0, "name"); err != nil || s != "text" {
		t.Errorf("String = %q, %v", s, err)
	}
	if n, err := p.Int(1, "n"); err != nil || n != -5 {
		t.Errorf("Int = %d, %v", n, err)
	}
	if b, err := p.Bool(2, "b"); err != nil || !b {
		t.Errorf("Bool = %v, %v", b, err)
	}
	if id, err := p.ID(3, "job_id"); err != nil || id != 9223372036854775807 {
		t.Errorf("ID = %d, %v", id, err)
	}
	if ids, err := p.IDs(4, "run_ids"); err != nil || !reflect.DeepEqual(ids, []int64{1, 2, 30}) {
		t.Errorf("IDs = %v, %v", ids, err)
	}
	if s, err := p.Struct(5, "filter"); err != nil || s.Len() != 1 || s.Label() != "param 6 (filter)" {
		t.Errorf("Struct = %v, %v", s, err)
	}
	if a, err := p.Array(6, "list"); err != nil || len(a) != 2 {
		t.Errorf("Array = %v, %v", a, err)
	}
	if a, err := p.StringSlice(6, "list"); err != nil || !reflect.DeepEqual(a, []string{"a", "b"}) {
		t.Errorf("StringSlice = %v, %v", a, err)
	}
	if tm, err := p.Time(8, "at"); err != nil || !tm.Equal(when) {
		t.Errorf("Time = %v, %v", tm, err)
	}
	if tm, err := p.Time(9, "at"); err != nil || !tm.Equal(when) || tm.Location() != time.UTC {
		t.Errorf("Time from RFC 3339 = %v, %v", tm, err)
	}
	if f, err := p.Float(10, "x"); err != nil || f != 2.5 {
		t.Errorf("Float = %v, %v", f, err)
	}
	if f, err := p.Float(1, "x"); err != nil || f != -5 {
		t.Errorf("Float from int = %v, %v", f, err)
	}
	if !p.Has(0) || p.Has(7) || p.Has(11) || p.Has(-1) {
		t.Error("Has is wrong")
	}

	_, err := p.String(1, "name")
	wantFault(t, err, "param 2 (name): expected string, got int -5")
	_, err = p.Int(0, "max")
	wantFault(t, err, `param 1 (max): expected int, got string "text"`)
	_, err = p.Int(11, "max")
	wantFault(t, err, "param 12 (max): missing; expected int")
	_, err = p.Bool(7, "")
	wantFault(t, err, "param 8: expected boolean, got nil")
	_, err = p.Struct(6, "job")
	wantFault(t, err, "param 7 (job): expected struct, got array of 2")
	_, err = p.Array(5, "ids")
	wantFault(t, err, "param 6 (ids): expected array, got struct with 1 members")
	_, err = p.StringSlice(4, "targets")
	wantFault(t, err, "param 5 (targets): item 2: expected string, got int 2")
	_, err = p.Time(0, "at")
	wantFault(t, err, `param 1 (at): expected dateTime.iso8601 or RFC 3339 string, got string "text"`)
	_, err = p.Float(2, "x")
	wantFault(t, err, "param 3 (x): expected double, got boolean true")
	_, err = Params{strings.Repeat("long ", 20)}.Int(0, "n")
	wantFault(t, err, `param 1 (n): expected int, got string "long long long long long long long long …"`)
}

func TestIDs(t *testing.T) {
	good := []struct {
		in   any
		want int64
	}{
		{"1", 1},
		{"007", 7},
		{"9223372036854775807", 9223372036854775807},
		{int64(42), 42},
		{int64(9223372036854775807), 9223372036854775807},
	}
	for _, c := range good {
		if id, err := (Params{c.in}).ID(0, "id"); err != nil || id != c.want {
			t.Errorf("ID(%#v) = %d, %v", c.in, id, err)
		}
	}
	bad := []struct {
		in   any
		want string
	}{
		{"", "param 1 (job_id): expected an id (decimal digits), got an empty string"},
		{"0", `param 1 (job_id): expected an id > 0, got string "0"`},
		{"-1", `param 1 (job_id): expected an id (decimal digits), got string "-1"`},
		{"+1", `param 1 (job_id): expected an id (decimal digits), got string "+1"`},
		{" 1", `param 1 (job_id): expected an id (decimal digits), got string " 1"`},
		{"1e3", `param 1 (job_id): expected an id (decimal digits), got string "1e3"`},
		{"٣", `param 1 (job_id): expected an id (decimal digits), got string "٣"`},
		{"9223372036854775808", `param 1 (job_id): id "9223372036854775808" does not fit in 64 bits`},
		{int64(0), "param 1 (job_id): expected an id > 0, got int 0"},
		{int64(-3), "param 1 (job_id): expected an id > 0, got int -3"},
		{2.0, "param 1 (job_id): expected an id (decimal-digit string or int), got double 2"},
		{nil, "param 1 (job_id): expected an id (decimal-digit string or int), got nil"},
	}
	for _, c := range bad {
		_, err := (Params{c.in}).ID(0, "job_id")
		wantFault(t, err, c.want)
	}
	_, err := Params{[]any{"1", "x"}}.IDs(0, "run_ids")
	wantFault(t, err, `param 1 (run_ids): item 2: expected an id (decimal digits), got string "x"`)
	_, err = Params{"1"}.IDs(0, "run_ids")
	wantFault(t, err, `param 1 (run_ids): expected array of ids, got string "1"`)
	if ids, err := (Params{[]any{}}).IDs(0, "run_ids"); err != nil || ids == nil || len(ids) != 0 {
		t.Errorf("empty IDs = %#v, %v", ids, err)
	}
}

func TestStruct(t *testing.T) {
	when := time.Date(2030, 6, 7, 8, 9, 10, 0, time.UTC)
	p := Params{map[string]any{
		"hostname": "web1",
		"priority": int64(5),
		"dry":      false,
		"at":       when,
		"at_text":  "2030-06-07T08:09:10Z",
		"targets":  []any{"a", "b"},
		"ids":      []any{"3", int64(4)},
		"id":       "99",
		"env":      map[string]any{"PATH": int64(1)},
		"gone":     nil,
		"ratio":    0.5,
	}}
	s, err := p.Struct(0, "job")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.String("hostname"); v != "web1" || !ok || err != nil {
		t.Errorf("String = %q %v %v", v, ok, err)
	}
	if v, ok, err := s.String("absent"); v != "" || ok || err != nil {
		t.Errorf("absent String = %q %v %v", v, ok, err)
	}
	if v, ok, err := s.Int("gone"); v != 0 || ok || err != nil {
		t.Errorf("nil member = %v %v %v, want absent", v, ok, err)
	}
	if v, ok, err := s.Int("priority"); v != 5 || !ok || err != nil {
		t.Errorf("Int = %v %v %v", v, ok, err)
	}
	if v, ok, err := s.Bool("dry"); v || !ok || err != nil {
		t.Errorf("Bool = %v %v %v", v, ok, err)
	}
	if v, ok, err := s.Time("at"); !v.Equal(when) || !ok || err != nil {
		t.Errorf("Time = %v %v %v", v, ok, err)
	}
	if v, ok, err := s.Time("at_text"); !v.Equal(when) || !ok || err != nil {
		t.Errorf("Time from string = %v %v %v", v, ok, err)
	}
	if v, ok, err := s.StringSlice("targets"); !reflect.DeepEqual(v, []string{"a", "b"}) || !ok || err != nil {
		t.Errorf("StringSlice = %v %v %v", v, ok, err)
	}
	if v, ok, err := s.IDs("ids"); !reflect.DeepEqual(v, []int64{3, 4}) || !ok || err != nil {
		t.Errorf("IDs = %v %v %v", v, ok, err)
	}
	if v, ok, err := s.ID("id"); v != 99 || !ok || err != nil {
		t.Errorf("ID = %v %v %v", v, ok, err)
	}
	if v, ok, err := s.Float("ratio"); v != 0.5 || !ok || err != nil {
		t.Errorf("Float = %v %v %v", v, ok, err)
	}
	if v, ok, err := s.Array("targets"); len(v) != 2 || !ok || err != nil {
		t.Errorf("Array = %v %v %v", v, ok, err)
	}
	env, ok, err := s.Struct("env")
	if !ok || err != nil {
		t.Fatalf("Struct = %v %v", ok, err)
	}
	if !s.Has("hostname") || s.Has("gone") || s.Has("nope") {
		t.Error("Has is wrong")
	}

	_, ok, err = s.String("priority")
	if !ok {
		t.Error("a present member of the wrong type must report ok")
	}
	wantFault(t, err, `param 1 (job): member "priority": expected string, got int 5`)
	_, _, err = s.Int("hostname")
	wantFault(t, err, `param 1 (job): member "hostname": expected int, got string "web1"`)
	_, _, err = s.Bool("priority")
	wantFault(t, err, `param 1 (job): member "priority": expected boolean, got int 5`)
	_, _, err = s.Time("hostname")
	wantFault(t, err, `param 1 (job): member "hostname": expected dateTime.iso8601 or RFC 3339 string, got string "web1"`)
	_, _, err = s.StringSlice("ids")
	wantFault(t, err, `param 1 (job): member "ids": item 2: expected string, got int 4`)
	_, _, err = s.IDs("targets")
	wantFault(t, err, `param 1 (job): member "targets": item 1: expected an id (decimal digits), got string "a"`)
	_, _, err = s.ID("dry")
	wantFault(t, err, `param 1 (job): member "dry": expected an id (decimal-digit string or int), got boolean false`)
	_, _, err = s.Struct("targets")
	wantFault(t, err, `param 1 (job): member "targets": expected struct, got array of 2`)
	_, _, err = env.String("PATH")
	wantFault(t, err, `param 1 (job): member "env": member "PATH": expected string, got int 1`)

	wantFault(t, s.Unknown("hostname", "priority"), `param 1 (job): unknown member "at" (allowed: hostname, priority)`)
	if err := s.Unknown("hostname", "priority", "dry", "at", "at_text", "targets", "ids", "id", "env", "gone", "ratio"); err != nil {
		t.Errorf("Unknown with all allowed: %v", err)
	}
	wantFault(t, env.Unknown(), `param 1 (job): member "env": unknown member "PATH" (this struct takes no members)`)
	wantFault(t, NewStruct("", map[string]any{"z": 1, "y": 2}).Unknown("z"), `struct: unknown member "y" (allowed: z)`)

	var zero Struct
	if _, ok, err := zero.String("x"); ok || err != nil || zero.Unknown() != nil {
		t.Error("the zero Struct must be empty")
	}
}
