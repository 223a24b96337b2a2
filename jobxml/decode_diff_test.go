package jobxml

import (
	"reflect"
	"testing"
)

func sameError(t *testing.T, data []byte, err1, err2 error) {
	t.Helper()
	e1, ok1 := err1.(*Error)
	e2, ok2 := err2.(*Error)
	if !ok1 || !ok2 || *e1 != *e2 {
		t.Fatalf("document %q:\n      xmlscan: %#v\nencoding/xml: %#v", data, err1, err2)
	}
}

func sameJob(t *testing.T, data []byte) {
	t.Helper()
	j1, err1 := DecodeJob(data)
	j2, err2 := refDecodeJob(data)
	if (err1 == nil) != (err2 == nil) || j1 != j2 {
		t.Fatalf("document %q:\n      xmlscan: %+v, %v\nencoding/xml: %+v, %v", data, j1, err1, j2, err2)
	}
	if err1 != nil {
		sameError(t, data, err1, err2)
	}
}

func sameStatuses(t *testing.T, data []byte) {
	t.Helper()
	s1, err1 := DecodeStatuses(data)
	s2, err2 := refDecodeStatuses(data)
	if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(s1, s2) {
		t.Fatalf("document %q:\n      xmlscan: %+v, %v\nencoding/xml: %+v, %v", data, s1, err1, s2, err2)
	}
	if err1 != nil {
		sameError(t, data, err1, err2)
	}
}

// diffDocs reach the corners where the scanner could part from encoding/xml.
var diffDocs = []string{
	"\uFEFF" + baseJobDoc,
	"\uFEFF\n<job>",
	`<job version="1" id="1" run="2" attempt="1" x:a="1" xmlns:x="u"/>`,
	`<job xmlns:x="" x:version="1" id="1" run="2" attempt="1"/>`,
	`<x:job xmlns:x="urn:a"/>`,
	`<x:job xmlns:x=""/>`,
	`<job xmlns=""/>`,
	`<job xml:lang="en"/>`,
	`<xml:job/>`,
	`<xmlns:job/>`,
	`<job:/>`,
	`<:job/>`,
	`<job version="1" id="1" run="2" attempt="1"><name xmlns="u">x</name></job>`,
	`<job version="1" id="1" run="2" attempt="1"><name>a<x:b xmlns:x="u"/></name></job>`,
	`<job version="1" id="1" run="2" attempt="1"><name>&#xD800;</name></job>`,
	`<job version="1" id="1" run="2" attempt="1"><name><![CDATA[&#xD800;]]></name></job>`,
	`<job version="1" id="1" run="2" attempt="1"><script interpreter="&#55296;"/></job>`,
	`<job version="1" id="1" run="2" attempt="1"><script interpreter="a&#x0000D800;&#xDFFF;"/></job>`,
	"<job version=\"1\" id=\"1\" run=\"2\" attempt=\"1\"><name>a\r\nb\rc&#xD;\n</name><script interpreter=\"a\r\nb\tc\">x\r</script></job>",
	`<job version="1" id="1" run="2" attempt="1"></jobs>`,
	`<job version="1" id="1" run="2" attempt="1"></x:job>`,
	`<x:job></y:job>`,
	`<?xml version="1.0"?><?xml version="1.0"?><job/>`,
	`<?xml version="1.0" encoding="latin1"?><job/>`,
	`<?xml  version="1.1"?><job/>`,
	"<?xml\tversion='1.0' encoding='utf-8' standalone='no'?>\n<job/>",
	`<job/><?xml version="1.1"?>`,
	`<job/><?xml encoding="latin1"?>`,
	`<job/></job>`,
	`<job/><!-- ok -->  `,
	`<job/><!DOCTYPE x>`,
	`<statuses version="1"><status run="1" state="running"/><status run="2" state="running"><output>a</output><output/></status></statuses>`,
	`<status run="1" state="running"><output truncated="true"><!-- a -->x<![CDATA[y]]>&amp;</output></status>`,
	`<status run="1" state="failed" exit="-1" finished="2026-11-22T10:00:01.123456789+05:30" started="2026-11-22T04:30:01.1Z" reason="a-1"/>`,
	"<status run='1' state=' running\n'/>",
	`<statuses version="01"><status run="1" state="running"/></statuses>`,
	`<statuses version=" 1 "><status run="1" state="running"/></statuses>`,
}

func TestDecodeMatchesReference(t *testing.T) {
	for _, c := range jobRejections {
		doc := []byte(c.apply(t, baseJobDoc))
		sameJob(t, doc)
		sameStatuses(t, doc)
	}
	for _, c := range statusRejections {
		doc := []byte(c.apply(t, baseStatusDoc))
		sameJob(t, doc)
		sameStatuses(t, doc)
	}
	for _, c := range statusesRejections {
		sameStatuses(t, []byte(c.doc))
	}
	for _, d := range diffDocs {
		sameJob(t, []byte(d))
		sameStatuses(t, []byte(d))
	}
	for _, c := range hostile() {
		j := baseJob()
		j.Script = c.text
		if b, err := EncodeJob(j); err == nil {
			sameJob(t, b)
		}
	}
}

// FuzzDecodeJobMatchesReference: DecodeJob (xmlscan) and the encoding/xml
// decoder it replaced decide alike on every document, with the same job or
// the same *Error, message and position included.
func FuzzDecodeJobMatchesReference(f *testing.F) {
	f.Add([]byte(baseJobDoc))
	f.Add([]byte(baseStatusDoc))
	for _, d := range diffDocs {
		f.Add([]byte(d))
	}
	f.Add([]byte(`<job attempt="1" run="2" id="3" version="1"><script interpreter="sh">a&#xD;<![CDATA[]]]]><![CDATA[>]]></script><name/><priority>-1</priority><permission>p</permission><submitted-by/></job>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sameJob(t, data)
	})
}

// FuzzDecodeStatusesMatchesReference: the same for status documents.
func FuzzDecodeStatusesMatchesReference(f *testing.F) {
	statusSeeds(f)
	for _, d := range diffDocs {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sameStatuses(t, data)
	})
}
