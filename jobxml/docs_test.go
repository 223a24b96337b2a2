package jobxml

import (
	"bytes"
	"encoding/xml"
	"os"
	"strings"
	"testing"
)

const docsPath = "../docs/job-xml.md"

// fence is one fenced code block of the documentation.
type fence struct {
	info, body string
	line       int
}

func docFences(t *testing.T) []fence {
	t.Helper()
	b, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []fence
	var cur *fence
	var body strings.Builder
	for i, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "```") {
			if cur != nil {
				body.WriteString(l)
				body.WriteByte('\n')
			}
			continue
		}
		if cur == nil {
			cur = &fence{info: strings.TrimSpace(l[3:]), line: i + 1}
			body.Reset()
			continue
		}
		cur.body = body.String()
		out = append(out, *cur)
		cur = nil
	}
	if cur != nil {
		t.Fatalf("%s:%d: unclosed code block", docsPath, cur.line)
	}
	return out
}

// rootName is the name of a document's root element, or "".
func rootName(doc string) string {
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := d.RawToken()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name.Local
		}
	}
}

func decodeDoc(doc string) (reencoded []byte, err error) {
	switch rootName(doc) {
	case "job":
		j, err := DecodeJob([]byte(doc))
		if err != nil {
			return nil, err
		}
		return EncodeJob(j)
	case "status", "statuses":
		ss, err := DecodeStatuses([]byte(doc))
		if err != nil {
			return nil, err
		}
		return EncodeStatuses(ss)
	}
	// Not a document of ours: let DecodeJob say why.
	_, err = DecodeJob([]byte(doc))
	return nil, err
}

// The documentation's examples are part of the contract: every ```xml block
// is a document that decodes, and is written exactly as the encoder writes
// it; every ```xml invalid block is refused with exactly the message in the
// ```text block that follows it.
func TestDocsExamples(t *testing.T) {
	fs := docFences(t)
	valid, invalid := 0, 0
	for i, f := range fs {
		switch f.info {
		case "xml":
			valid++
			got, err := decodeDoc(f.body)
			if err != nil {
				t.Errorf("%s:%d: example does not decode: %v", docsPath, f.line, err)
				continue
			}
			if !bytes.Equal(got, []byte(f.body)) {
				t.Errorf("%s:%d: example is not what the encoder writes; it writes:\n%s", docsPath, f.line, got)
			}
		case "xml invalid":
			invalid++
			_, err := decodeDoc(f.body)
			if err == nil {
				t.Errorf("%s:%d: invalid example decodes", docsPath, f.line)
				continue
			}
			if i+1 >= len(fs) || fs[i+1].info != "text" {
				t.Errorf("%s:%d: invalid example not followed by a ```text block with its error", docsPath, f.line)
				continue
			}
			if want := strings.TrimSpace(fs[i+1].body); err.Error() != want {
				t.Errorf("%s:%d: error\n got: %s\nwant: %s", docsPath, f.line, err, want)
			}
		}
	}
	if valid < 4 || invalid < 4 {
		t.Fatalf("found %d valid and %d invalid examples: has the page lost its examples?", valid, invalid)
	}
}

// The rules table quotes messages; each must be one the decoder gives.
func TestDocsErrorTableQuotesRealMessages(t *testing.T) {
	b, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	var known []string
	for _, c := range jobRejections {
		known = append(known, c.want)
	}
	for _, c := range statusRejections {
		known = append(known, c.want)
	}
	for _, c := range statusesRejections {
		known = append(known, c.want)
	}
	known = append(known, "status document: <statuses>: more than 10000 <status> elements: send the rest in another document") // TestDecodeStatusesLimit
	all := strings.Join(known, "\n")
	n := 0
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "| rule | message |") {
			in = true
			continue
		}
		if !in || strings.HasPrefix(l, "|---") {
			continue
		}
		cells := strings.Split(l, "|")
		if len(cells) != 4 {
			break // end of the table
		}
		msg := strings.Trim(strings.TrimSpace(cells[2]), "`")
		if !strings.Contains(all, msg) {
			t.Errorf("documented message %q is not one the decoder gives", msg)
		}
		n++
	}
	if n < 20 {
		t.Fatalf("only %d messages found in the table", n)
	}
}
