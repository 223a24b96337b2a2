package xmlrpc

import (
	"strings"
	"testing"
)

func TestStringMap(t *testing.T) {
	s := NewStruct("param 1 (facts)", map[string]any{"facts": map[string]any{"os": "linux", "role": "web"}, "bad": map[string]any{"a": "x", "b": int64(1)}})
	m, ok, err := s.StringMap("facts")
	if err != nil || !ok || len(m) != 2 || m["role"] != "web" {
		t.Fatalf("StringMap = %v, %v, %v", m, ok, err)
	}
	if _, ok, err := s.StringMap("absent"); ok || err != nil {
		t.Fatalf("absent member: %v %v", ok, err)
	}
	if _, _, err := s.StringMap("bad"); err == nil || !strings.Contains(err.Error(), `"b"`) {
		t.Fatalf("a member that is not a string: %v", err)
	}
}
