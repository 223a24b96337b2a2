package jobxml

import (
	"errors"
	"strings"
	"testing"
)

// baseJobDoc and baseStatusDoc are the docs/job-xml.md examples; each rejection case
// below breaks one rule by one replacement.
const baseJobDoc = `<job version="1" id="42" run="1042" attempt="1">
  <name>uptime</name>
  <permission>run</permission>
  <priority>5</priority>
  <submitted-by>alice</submitted-by>
  <timeout>300</timeout>
  <script interpreter="/bin/sh"><![CDATA[uptime]]></script>
</job>
`

const baseStatusDoc = `<status run="1042" state="succeeded" exit="0" started="2026-11-22T10:00:00Z" finished="2026-11-22T10:00:01Z">
  <output truncated="false"><![CDATA[ 10:00:01 up 3 days ...]]></output>
</status>
`

type rejection struct{ old, new, want string }

func (c rejection) apply(t *testing.T, base string) string {
	t.Helper()
	doc := strings.Replace(base, c.old, c.new, 1)
	if doc == base {
		t.Fatalf("replacing %q changed nothing", c.old)
	}
	return doc
}

func checkRejection(t *testing.T, doc, want string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted:\n%s", doc)
	}
	if err.Error() != want {
		t.Fatalf("wrong message\n got: %s\nwant: %s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%T is not *Error", err)
	}
}

var jobRejections = []rejection{
	{"<timeout>300<", "<timeout>abc<", "job document: <timeout>: \"abc\" is not a whole number of seconds (line 6, column 3)"},
	{"<timeout>300<", "<timeout>-5<", "job document: <timeout>: -5 is negative: a timeout is 0 or more seconds (line 6, column 3)"},
	{"<timeout>300<", "<timeout>1.5<", "job document: <timeout>: \"1.5\" is not a whole number of seconds (line 6, column 3)"},
	{"<timeout>300<", "<timeout>99999999999<", "job document: <timeout>: 99999999999 is out of range (at most 9223372036 seconds) (line 6, column 3)"},
	{"<timeout>300<", "<timeout>99999999999999999999999<", "job document: <timeout>: 99999999999999999999999 is out of range (at most 9223372036 seconds) (line 6, column 3)"},
	{"<timeout>300<", "<timeout><", "job document: <timeout>: \"\" is not a whole number of seconds (line 6, column 3)"},
	{"  <name>", "  <color>red</color>\n  <name>", "job document: <job>: unknown element <color> (line 2, column 3)"},
	{"attempt=\"1\"", "attempt=\"1\" foo=\"x\"", "job document: <job>: unknown attribute \"foo\" (line 1, column 1)"},
	{"<name>", "<name lang=\"en\">", "job document: <name>: unknown attribute \"lang\" (line 2, column 3)"},
	{" id=\"42\"", "", "job document: <job>: missing attribute \"id\" (line 1, column 1)"},
	{" run=\"1042\"", "", "job document: <job>: missing attribute \"run\" (line 1, column 1)"},
	{" attempt=\"1\"", "", "job document: <job>: missing attribute \"attempt\" (line 1, column 1)"},
	{"  <script interpreter=\"/bin/sh\"><![CDATA[uptime]]></script>\n", "", "job document: <job>: missing element <script> (line 1, column 1)"},
	{"  <name>uptime</name>\n", "", "job document: <job>: missing element <name> (line 1, column 1)"},
	{"  <priority>5</priority>\n", "  <priority>5</priority>\n  <priority>6</priority>\n", "job document: <job>: element <priority> appears twice (line 5, column 3)"},
	{"id=\"42\"", "id=\"42\" id=\"43\"", "job document: <job>: attribute \"id\" appears twice (line 1, column 1)"},
	{"version=\"1\"", "version=\"2\"", "job document: <job>: version 2 is not supported: this decoder knows version 1 only (line 1, column 1)"},
	{"version=\"1\"", "version=\"2\" colour=\"red\"", "job document: <job>: version 2 is not supported: this decoder knows version 1 only (line 1, column 1)"},
	{"version=\"1\"", "version=\"abc\"", "job document: <job>: attribute \"version\": \"abc\" is not a version number (line 1, column 1)"},
	{"version=\"1\" ", "", "job document: <job>: missing attribute \"version\" (line 1, column 1)"},
	{"id=\"42\"", "id=\"abc\"", "job document: <job>: attribute \"id\": \"abc\" is not a positive whole number (line 1, column 1)"},
	{"id=\"42\"", "id=\"-1\"", "job document: <job>: attribute \"id\": \"-1\" is not a positive whole number (line 1, column 1)"},
	{"id=\"42\"", "id=\"0\"", "job document: <job>: attribute \"id\": \"0\" is not a positive whole number (line 1, column 1)"},
	{"id=\"42\"", "id=\"042\"", "job document: <job>: attribute \"id\": \"042\" is not a positive whole number (line 1, column 1)"},
	{"id=\"42\"", "id=\"+42\"", "job document: <job>: attribute \"id\": \"+42\" is not a positive whole number (line 1, column 1)"},
	{"id=\"42\"", "id=\"99999999999999999999\"", "job document: <job>: attribute \"id\": 99999999999999999999 is out of range (line 1, column 1)"},
	{"run=\"1042\"", "run=\"1e3\"", "job document: <job>: attribute \"run\": \"1e3\" is not a positive whole number (line 1, column 1)"},
	{"attempt=\"1\"", "attempt=\"0\"", "job document: <job>: attribute \"attempt\": \"0\" is not a positive whole number (line 1, column 1)"},
	{"<priority>5<", "<priority>abc<", "job document: <priority>: \"abc\" is not a whole number (line 4, column 3)"},
	{"<priority>5<", "<priority>5.0<", "job document: <priority>: \"5.0\" is not a whole number (line 4, column 3)"},
	{"<priority>5<", "<priority>99999999999999999999<", "job document: <priority>: 99999999999999999999 is out of range (line 4, column 3)"},
	{" interpreter=\"/bin/sh\"", "", "job document: <script>: missing attribute \"interpreter\" (line 7, column 3)"},
	{" interpreter=\"/bin/sh\"", " interpreter=\"\"", "job document: <script>: attribute \"interpreter\" must not be empty (line 7, column 3)"},
	{"<permission>run</permission>", "<permission></permission>", "job document: <permission>: must not be empty (the default is \"run\") (line 3, column 3)"},
	{"<name>uptime</name>", "<name>up<b>time</b></name>", "job document: <name>: unexpected element <b>: this element holds only text (line 2, column 11)"},
	{"\n  <name>", "stray text\n  <name>", "job document: <job>: unexpected text \"stray text\" (line 1, column 49)"},
	{"</job>\n", "</job>\ngarbage", "job document: text \"garbage\" after the root element </job> (line 8, column 7)"},
	{"</job>\n", "</job>\n<job/>", "job document: element <job> after the root element </job>: a document has one root (line 9, column 1)"},
	{"</job>\n", "</job>\n<?pi x?>", "job document: processing instruction <?pi?> is not allowed (line 9, column 1)"},
	{"<job ", "<!DOCTYPE job [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n<job ", "job document: <!DOCTYPE ...> is not allowed: documents have no DTD, entity or other declarations (line 1, column 1)"},
	{"<name>uptime", "<name>&xxe;", "job document: XML syntax error: invalid character entity &xxe; (line 2)"},
	{"<name>uptime", "<name>&nbsp;", "job document: XML syntax error: invalid character entity &nbsp; (line 2)"},
	{"<job ", "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<job ", "job document: XML declaration: encoding \"ISO-8859-1\" is not supported: documents are UTF-8 (line 1, column 1)"},
	{"<job ", "<?xml version=\"1.1\"?>\n<job ", "job document: XML declaration: XML version \"1.1\" is not supported: documents are XML 1.0 (line 1, column 1)"},
	{"<job ", "\n<?xml version=\"1.0\"?>\n<job ", "job document: the XML declaration <?xml ...?> must come first in the document (line 2, column 1)"},
	{"<job ", "<?php echo 1 ?>\n<job ", "job document: processing instruction <?php?> is not allowed (line 1, column 1)"},
	{"<job ", "<job xmlns=\"urn:x\" ", "job document: root element <urn:x:job>: namespaces are not used in these documents (line 1, column 1)"},
	{"version=\"1\"", "version=\"1\" xmlns:x=\"urn:x\"", "job document: <job>: namespace declaration xmlns:x: namespaces are not used in these documents (line 1, column 1)"},
	{"<name>", "<x:name xmlns:x=\"urn:x\">", "job document: <job>: element <urn:x:name>: namespaces are not used in these documents (line 2, column 3)"},
	{"uptime</name>", "&#xD800;</name>", "job document: character reference &#xD800; is not allowed in XML (line 2, column 9)"},
	{"uptime</name>", "&#0;</name>", "job document: XML syntax error: illegal character code U+0000 (line 2)"},
	{"uptime</name>", "\x01</name>", "job document: XML syntax error: illegal character code U+0001 (line 2)"},
	{"uptime</name>", "\xff</name>", "job document: XML syntax error: invalid UTF-8 (line 2)"},
	{"uptime]]>", "\x01]]>", "job document: XML syntax error: illegal character code U+0001 (line 7)"},
	{"</job>\n", "", "job document: XML syntax error: unexpected EOF (line 8)"},
	{"\"/bin/sh\"", "/bin/sh", "job document: XML syntax error: unquoted or missing attribute value in element (line 7)"},
	{"<job", "<status", "job document: the root element is <status>, want <job> (line 1, column 1)"},
	{baseJobDoc, "", "job document: the document is empty: no root element"},
	{baseJobDoc, "  \n", "job document: the document is empty: no root element"},
	{baseJobDoc, "<job", "job document: XML syntax error: unexpected EOF (line 1)"},
}

func TestDecodeJobRejections(t *testing.T) {
	for _, c := range jobRejections {
		t.Run(c.want, func(t *testing.T) {
			doc := c.apply(t, baseJobDoc)
			if c.old == "<job" { // a whole other root
				doc = strings.Replace(doc, "</job>", "</status>", 1)
			}
			j, err := DecodeJob([]byte(doc))
			checkRejection(t, doc, c.want, err)
			if j != (Job{}) {
				t.Errorf("a refused document still returned %+v", j)
			}
		})
	}
}

var statusRejections = []rejection{
	{"state=\"succeeded\"", "state=\"done\"", "status document: <status> (run 1042): attribute \"state\": \"done\" is not one of running, succeeded, failed (line 1, column 1)"},
	{" state=\"succeeded\"", "", "status document: <status> (run 1042): missing attribute \"state\" (line 1, column 1)"},
	{"run=\"1042\" ", "", "status document: <status>: missing attribute \"run\" (line 1, column 1)"},
	{"run=\"1042\"", "run=\"x\"", "status document: <status>: attribute \"run\": \"x\" is not a positive whole number (line 1, column 1)"},
	{" exit=\"0\"", "", "status document: <status> (run 1042): state=\"succeeded\" requires exit=\"0\" (line 1, column 1)"},
	{" exit=\"0\"", " exit=\"1\"", "status document: <status> (run 1042): state=\"succeeded\" contradicts exit=\"1\": a non-zero exit is a failure (line 1, column 1)"},
	{"exit=\"0\"", "exit=\"abc\"", "status document: <status> (run 1042): attribute \"exit\": \"abc\" is not a whole number (line 1, column 1)"},
	{"state=\"succeeded\"", "state=\"failed\"", "status document: <status> (run 1042): state=\"failed\" contradicts exit=\"0\": exit 0 is a success; a run stopped from outside has no exit, only a reason (line 1, column 1)"},
	{"state=\"succeeded\" exit=\"0\"", "state=\"running\" exit=\"0\"", "status document: <status> (run 1042): exit is not allowed with state=\"running\": the process has not exited (line 1, column 1)"},
	{"state=\"succeeded\" exit=\"0\"", "state=\"running\"", "status document: <status> (run 1042): finished is not allowed with state=\"running\" (line 1, column 1)"},
	{" finished=\"2026-11-22T10:00:01Z\"", "", "status document: <status> (run 1042): state=\"succeeded\" requires finished (line 1, column 1)"},
	{"started=\"2026-11-22T10:00:00Z\"", "started=\"yesterday\"", "status document: <status> (run 1042): attribute \"started\": \"yesterday\" is not an RFC 3339 timestamp such as 2026-11-22T10:00:00Z (line 1, column 1)"},
	{"started=\"2026-11-22T10:00:00Z\"", "started=\"2026-11-22 10:00:00Z\"", "status document: <status> (run 1042): attribute \"started\": \"2026-11-22 10:00:00Z\" is not an RFC 3339 timestamp such as 2026-11-22T10:00:00Z (line 1, column 1)"},
	{"started=\"2026-11-22T10:00:00Z\"", "started=\"2026-11-22T10:00:00\"", "status document: <status> (run 1042): attribute \"started\": \"2026-11-22T10:00:00\" is not an RFC 3339 timestamp such as 2026-11-22T10:00:00Z (line 1, column 1)"},
	{"started=\"2026-11-22T10:00:00Z\"", "started=\"2026-11-22T25:00:00Z\"", "status document: <status> (run 1042): attribute \"started\": \"2026-11-22T25:00:00Z\" is not a valid time: \"2026-11-22T25:00:00Z\": hour out of range (line 1, column 1)"},
	{"started=\"2026-11-22T10:00:00Z\"", "started=\"2026-02-30T10:00:00Z\"", "status document: <status> (run 1042): attribute \"started\": \"2026-02-30T10:00:00Z\" is not a valid time: \"2026-02-30T10:00:00Z\": day out of range (line 1, column 1)"},
	{"started=\"2026-11-22T10:00:00Z\"", "started=\"2026-11-22T10:00:00,5Z\"", "status document: <status> (run 1042): attribute \"started\": \"2026-11-22T10:00:00,5Z\" is not an RFC 3339 timestamp such as 2026-11-22T10:00:00Z (line 1, column 1)"},
	{"started=\"2026-11-22T10:00:00Z\"", "started=\"0001-01-01T00:00:00Z\"", "status document: <status> (run 1042): attribute \"started\": \"0001-01-01T00:00:00Z\" is outside 1970-01-01T00:00:01Z..2262-04-11T23:47:16Z, the times scirectl stores (line 1, column 1)"},
	// Times past 2262 overflow the nanoseconds the databases keep (year
	// 9999 came back as 1816); the epoch itself is stored as "no time".
	{"finished=\"2026-11-22T10:00:01Z\"", "finished=\"9999-01-01T00:00:00Z\"", "status document: <status> (run 1042): attribute \"finished\": \"9999-01-01T00:00:00Z\" is outside 1970-01-01T00:00:01Z..2262-04-11T23:47:16Z, the times scirectl stores (line 1, column 1)"},
	{"finished=\"2026-11-22T10:00:01Z\"", "finished=\"2262-04-11T23:47:17Z\"", "status document: <status> (run 1042): attribute \"finished\": \"2262-04-11T23:47:17Z\" is outside 1970-01-01T00:00:01Z..2262-04-11T23:47:16Z, the times scirectl stores (line 1, column 1)"},
	{"finished=\"2026-11-22T10:00:01Z\"", "finished=\"2262-04-11T23:47:16.000000001Z\"", "status document: <status> (run 1042): attribute \"finished\": \"2262-04-11T23:47:16.000000001Z\" is outside 1970-01-01T00:00:01Z..2262-04-11T23:47:16Z, the times scirectl stores (line 1, column 1)"},
	{"finished=\"2026-11-22T10:00:01Z\"", "finished=\"2262-04-11T23:00:00-01:00\"", "status document: <status> (run 1042): attribute \"finished\": \"2262-04-11T23:00:00-01:00\" is outside 1970-01-01T00:00:01Z..2262-04-11T23:47:16Z, the times scirectl stores (line 1, column 1)"},
	{"started=\"2026-11-22T10:00:00Z\"", "started=\"1970-01-01T00:00:00Z\"", "status document: <status> (run 1042): attribute \"started\": \"1970-01-01T00:00:00Z\" is outside 1970-01-01T00:00:01Z..2262-04-11T23:47:16Z, the times scirectl stores (line 1, column 1)"},
	{"started=\"2026-11-22T10:00:00Z\"", "started=\"1969-12-31T23:59:59Z\"", "status document: <status> (run 1042): attribute \"started\": \"1969-12-31T23:59:59Z\" is outside 1970-01-01T00:00:01Z..2262-04-11T23:47:16Z, the times scirectl stores (line 1, column 1)"},
	{"started=\"2026-11-22T10:00:00Z\"", "started=\"2026-11-22T10:00:02Z\"", "status document: <status> (run 1042): finished 2026-11-22T10:00:01Z is before started 2026-11-22T10:00:02Z (line 1, column 1)"},
	{"state=\"succeeded\" exit=\"0\"", "state=\"failed\" reason=\"Bad Reason\"", "status document: <status> (run 1042): reason \"Bad Reason\" is not a word of the form [a-z][a-z0-9-]{0,31} (line 1, column 1)"},
	{"exit=\"0\"", "exit=\"0\" reason=\"timeout\"", "status document: <status> (run 1042): reason is only allowed with state=\"failed\" (line 1, column 1)"},
	{"state=\"succeeded\" exit=\"0\"", "state=\"failed\" reason=\"\"", "status document: <status> (run 1042): attribute \"reason\" is empty: leave it out instead (line 1, column 1)"},
	{"truncated=\"false\"", "truncated=\"yes\"", "status document: <status> (run 1042): <output>: attribute \"truncated\": \"yes\" is neither true nor false (line 2, column 3)"},
	{"truncated=\"false\"", "truncated=\"false\" encoding=\"base64\"", "status document: <status> (run 1042): <output>: unknown attribute \"encoding\" (line 2, column 3)"},
	{"</output>\n", "</output>\n  <output/>\n", "status document: <status> (run 1042): element <output> appears twice (line 3, column 3)"},
	{"</output>\n", "</output>\n  <stderr/>\n", "status document: <status> (run 1042): unknown element <stderr> (line 3, column 3)"},
	{"<status run", "<status version=\"2\" run", "status document: <status>: version 2 is not supported: this decoder knows version 1 only (line 1, column 1)"},
	{"<status run", "<status version=\"2\" colour=\"red\" run", "status document: <status>: version 2 is not supported: this decoder knows version 1 only (line 1, column 1)"},
	{"<status run", "<status foo=\"1\" run", "status document: <status>: unknown attribute \"foo\" (line 1, column 1)"},
	{"<status", "<job", "status document: the root element is <job>, want <status> or <statuses> (line 1, column 1)"},
	{"</status>\n", "</status>\n</status>", "status document: XML syntax error: unexpected end element </status> (line 4)"},
	{"</status>\n", "</status>\n<status/>", "status document: element <status> after the root element </status>: a document has one root (line 4, column 1)"},
	{"...]]>", "\f]]>", "status document: XML syntax error: illegal character code U+000C (line 2)"},
	{"<![CDATA[ 10:00:01 up 3 days ...]]>", "<x/>", "status document: <status> (run 1042): <output>: unexpected element <x>: this element holds only text (line 2, column 29)"},
}

func TestDecodeStatusRejections(t *testing.T) {
	for _, c := range statusRejections {
		t.Run(c.want, func(t *testing.T) {
			doc := c.apply(t, baseStatusDoc)
			if c.new == "<job" {
				doc = strings.Replace(doc, "</status>", "</job>", 1)
			}
			ss, err := DecodeStatuses([]byte(doc))
			checkRejection(t, doc, c.want, err)
			if ss != nil {
				t.Errorf("a refused document still returned %+v", ss)
			}
		})
	}
}

var statusesRejections = []struct{ doc, want string }{
	{"<statuses><status run=\"1\" state=\"running\"/></statuses>", "status document: <statuses>: missing attribute \"version\" (line 1, column 1)"},
	{"<statuses version=\"2\"><status run=\"1\" state=\"running\"/></statuses>", "status document: <statuses>: version 2 is not supported: this decoder knows version 1 only (line 1, column 1)"},
	{"<statuses version=\"1\"></statuses>", "status document: <statuses>: no <status> element: a document reports at least one run (line 1, column 1)"},
	{"<statuses version=\"1\"/>", "status document: <statuses>: no <status> element: a document reports at least one run (line 1, column 1)"},
	{"<statuses version=\"1\"><status version=\"1\" run=\"1\" state=\"running\"/></statuses>", "status document: <status> #1: attribute \"version\" belongs on <statuses>, not on the <status> elements inside it (line 1, column 23)"},
	{"<statuses version=\"1\"><status run=\"1\" state=\"running\"/><job/></statuses>", "status document: <statuses>: unknown element <job>: only <status> may appear here (line 1, column 56)"},
	{"<statuses version=\"1\"><status run=\"1\" state=\"running\"/>text</statuses>", "status document: <statuses>: unexpected text \"text\" (line 1, column 56)"},
	{"<statuses version=\"1\" id=\"3\"><status run=\"1\" state=\"running\"/></statuses>", "status document: <statuses>: unknown attribute \"id\" (line 1, column 1)"},
	{"<statuses version=\"1\"><status run=\"1\" state=\"running\"/><status run=\"2\" state=\"bogus\"/></statuses>", "status document: <status> #2 (run 2): attribute \"state\": \"bogus\" is not one of running, succeeded, failed (line 1, column 56)"},
	{"<statuses version=\"1\"><status run=\"1\" state=\"running\"/><status run=\"2\" state=\"running\"><output truncated=\"maybe\"/></status></statuses>", "status document: <status> #2 (run 2): <output>: attribute \"truncated\": \"maybe\" is neither true nor false (line 1, column 88)"},
	{"<statuses version=\"1\"><status run=\"1\" state=\"running\"/>", "status document: XML syntax error: unexpected EOF (line 1)"},
	{"<status run=\"1\" state=\"running\"", "status document: XML syntax error: unexpected EOF (line 1)"},
}

func TestDecodeStatusesRejections(t *testing.T) {
	for _, c := range statusesRejections {
		t.Run(c.want, func(t *testing.T) {
			_, err := DecodeStatuses([]byte(c.doc))
			checkRejection(t, c.doc, c.want, err)
		})
	}
}
