package jobxml

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// What the decoder accepts besides the encoder's own output: the other
// legal spellings of the same content, so that hand-written documents and
// other encoders are not refused for form.
func TestDecodeJobAcceptsEquivalentForms(t *testing.T) {
	want := baseJob()
	for _, c := range []struct{ name, doc string }{
		{"spec example", baseJobDoc},
		{"xml declaration", `<?xml version="1.0" encoding="utf-8" standalone="yes"?>` + "\n" + baseJobDoc},
		{"byte-order mark", "\uFEFF" + baseJobDoc},
		{"comments everywhere", "<!-- a -->\n" + strings.ReplaceAll(strings.Replace(baseJobDoc, "uptime]]>", "up]]><!-- c -->time", 1), "\n  <", "\n  <!-- b --><") + "<!-- z -->\n"},
		{"children in another order", `<job attempt="1" run="1042" id="42" version="1"><script interpreter="/bin/sh">uptime</script><timeout>300</timeout><submitted-by>alice</submitted-by><priority>5</priority><permission>run</permission><name>uptime</name></job>`},
		{"escaped text instead of CDATA", strings.Replace(baseJobDoc, "<![CDATA[uptime]]>", "up&#116;ime", 1)},
		{"CDATA and text mixed", strings.Replace(baseJobDoc, "<![CDATA[uptime]]>", "u<![CDATA[pt]]>&#x69;<![CDATA[]]>me", 1)},
		{"single-quoted attributes", strings.Replace(baseJobDoc, `interpreter="/bin/sh"`, `interpreter='/bin/sh'`, 1)},
		{"whitespace around numbers", strings.NewReplacer(`id="42"`, `id=" 42 "`, "<priority>5<", "<priority>\n 5\t<", "<timeout>300<", "<timeout> 300 <").Replace(baseJobDoc)},
		{"self-closing script is an empty script", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := want
			if c.doc == "" {
				c.doc = strings.Replace(baseJobDoc, `"/bin/sh"><![CDATA[uptime]]></script>`, `"/bin/sh"/>`, 1)
				w.Script = ""
			}
			got, err := DecodeJob([]byte(c.doc))
			if err != nil || got != w {
				t.Fatalf("got %+v, %v\n%s", got, err, c.doc)
			}
		})
	}
}

func TestDecodeJobValues(t *testing.T) {
	for _, c := range []struct {
		old, new string
		check    func(Job) bool
	}{
		{"<priority>5<", "<priority>-5<", func(j Job) bool { return j.Priority == -5 }},
		{"<priority>5<", "<priority>0<", func(j Job) bool { return j.Priority == 0 }},
		{"  <timeout>300</timeout>\n", "", func(j Job) bool { return j.Timeout == 0 }},
		{"<timeout>300<", "<timeout>0<", func(j Job) bool { return j.Timeout == 0 }},
		{"<timeout>300<", "<timeout>9223372036<", func(j Job) bool { return j.Timeout == 9223372036*time.Second }},
		{`id="42"`, `id="9223372036854775807"`, func(j Job) bool { return j.ID == 1<<63-1 }},
		{"<name>uptime</name>", "<name/>", func(j Job) bool { return j.Name == "" }},
		{"<name>uptime</name>", "<name>a&#xD;&#xA;b&#9;c&#x10FFFD;</name>", func(j Job) bool { return j.Name == "a\r\nb\tc\U0010FFFD" }},
		{"<name>uptime</name>", "<name>&lt;&gt;&amp;&apos;&quot;</name>", func(j Job) bool { return j.Name == `<>&'"` }},
		{"<name>uptime</name>", "<name>a\r\nb\rc</name>", func(j Job) bool { return j.Name == "a\nb\nc" }}, // raw line ends are normalised, as in every parser
	} {
		doc := strings.Replace(baseJobDoc, c.old, c.new, 1)
		j, err := DecodeJob([]byte(doc))
		if err != nil || !c.check(j) {
			t.Errorf("%s → %s: got %+v, %v", c.old, c.new, j, err)
		}
	}
}

func TestDecodeStatusesAcceptsBothRoots(t *testing.T) {
	one, err := DecodeStatuses([]byte(baseStatusDoc))
	if err != nil || len(one) != 1 {
		t.Fatal(one, err)
	}
	want := Status{Run: 1042, State: StateSucceeded, Exit: intp(0), Started: t0, Finished: t1, Output: " 10:00:01 up 3 days ..."}
	if !statusEqual(one[0], want) {
		t.Fatalf("got %+v", one[0])
	}
	versioned := strings.Replace(baseStatusDoc, "<status ", `<status version="1" `, 1)
	if got, err := DecodeStatuses([]byte(versioned)); err != nil || !statusEqual(got[0], want) {
		t.Fatalf("version on a <status> root: %+v, %v", got, err)
	}
	many := "<statuses version=\"1\">\n" + baseStatusDoc +
		`<status run="7" state="running"/>` +
		`<status run="8" state="failed" finished="2026-11-22T11:00:00+01:00" reason="lost"><output/></status>` +
		"</statuses>"
	got, err := DecodeStatuses([]byte(many))
	if err != nil || len(got) != 3 {
		t.Fatal(got, err)
	}
	if !statusEqual(got[0], want) ||
		!statusEqual(got[1], Status{Run: 7, State: StateRunning}) ||
		!statusEqual(got[2], Status{Run: 8, State: StateFailed, Finished: t0, Reason: "lost"}) {
		t.Fatalf("got %+v", got)
	}
	if got[2].Finished.Location() != time.UTC {
		t.Fatal("an offset time was not converted to UTC")
	}
}

func TestDecodeStatusesLimit(t *testing.T) {
	doc := func(n int) []byte {
		var b strings.Builder
		b.WriteString(`<statuses version="1">`)
		for i := range n {
			fmt.Fprintf(&b, `<status run="%d" state="running"/>`, i+1)
		}
		b.WriteString(`</statuses>`)
		return []byte(b.String())
	}
	if ss, err := DecodeStatuses(doc(MaxStatuses)); err != nil || len(ss) != MaxStatuses {
		t.Fatalf("%d statuses: %v", len(ss), err)
	}
	_, err := DecodeStatuses(doc(MaxStatuses + 1))
	want := "status document: <statuses>: more than 10000 <status> elements: send the rest in another document (line 1, column 358917)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// The decoder must not be slowed into a denial of service by depth: it
// refuses the first element it does not expect, however deep the rest goes.
func TestDecodeDeepNestingFailsFast(t *testing.T) {
	deep := strings.Repeat("<a>", 1_000_000)
	doc := strings.Replace(baseJobDoc, "<name>uptime</name>", "<name>"+deep+"</name>", 1)
	_, err := DecodeJob([]byte(doc))
	if err == nil || !strings.Contains(err.Error(), "<name>: unexpected element <a>: this element holds only text") {
		t.Fatal(err)
	}
}
