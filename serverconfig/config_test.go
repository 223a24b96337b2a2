package serverconfig

import "testing"

func TestSizeParse(t *testing.T) {
	for in, want := range map[string]Size{"1": 1, "65536": 65536, "512KiB": 512 << 10, "16MiB": 16 << 20, "16m": 16 << 20,
		"16 MB": 16 << 20, "1G": 1 << 30, "2gib": 2 << 30, "100b": 100} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1.5M", "16 TB", "MiB", "99999999999G"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
	for s, want := range map[Size]string{16 << 20: "16MiB", 1 << 30: "1GiB", 1536: "1536", 4096: "4KiB"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", int64(s), s.String(), want)
		}
	}
}
