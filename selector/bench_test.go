package selector

import (
	"strconv"
	"testing"
)

// BenchmarkMatch100k chooses among 100,000 machines, as `job submit
// --selector` does over a large fleet (the aim: well under 100 ms), with a
// selector of three requirements: a label set, a fact and an absent label.
// One op is the whole fleet.
func BenchmarkMatch100k(b *testing.B) {
	const fleet = 100000
	sel := mustParse(b, "env in (prod,staging),fact.os=linux,!maintenance")
	type machine struct{ labels, facts map[string]string }
	envs := []string{"prod", "staging", "dev", "qa"}
	oses := []string{"linux", "linux", "linux", "freebsd"}
	ms := make([]machine, fleet)
	for i := range ms {
		host := "web" + strconv.Itoa(i)
		l := map[string]string{"env": envs[i%len(envs)], "tier": "web", "rack": strconv.Itoa(i % 40)}
		if i%100 == 0 {
			l["maintenance"] = "true"
		}
		ms[i] = machine{l, map[string]string{
			"hostname": host, "os": oses[i%len(oses)], "arch": "amd64", "kernel": "6.1.0-13-amd64",
			"os_id": "debian", "os_version": "12", "cpus": "8", "agent_version": "1.4.0",
		}}
	}
	want := 0
	for i := range ms {
		if i%len(envs) < 2 && i%len(oses) != 3 && i%100 != 0 {
			want++
		}
	}
	n := 0
	for b.Loop() {
		n = 0
		for i := range ms {
			if sel.Matches(ms[i].labels, ms[i].facts) {
				n++
			}
		}
	}
	if n != want {
		b.Fatalf("%d machines matched, want %d", n, want)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/fleet, "ns/machine")
}
