package xmlscan

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// tok is one token, or the error that ended the input, in a form both
// scanners can be compared in.
type tok struct {
	Kind      Kind
	Name      string
	Attrs     string
	Data      string
	Offset    int
	Line, Col int
	Err       string // the error ending the input ("" for io.EOF)
}

func (t tok) String() string {
	if t.Err != "" {
		return fmt.Sprintf("error %s at offset %d, line %d, column %d", t.Err, t.Offset, t.Line, t.Col)
	}
	return fmt.Sprintf("%d %q %s %q at offset %d, line %d, column %d", t.Kind, t.Name, t.Attrs, t.Data, t.Offset, t.Line, t.Col)
}

const maxTokens = 5000

func rawName(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// refTokens reads src with encoding/xml: RawToken, or Token when nesting.
func refTokens(src []byte, nesting bool) []tok {
	d := xml.NewDecoder(bytes.NewReader(src))
	var out []tok
	for len(out) < maxTokens {
		var t xml.Token
		var err error
		if nesting {
			t, err = d.Token()
		} else {
			t, err = d.RawToken()
		}
		line, col := d.InputPos()
		if err != nil {
			if err == io.EOF {
				return append(out, tok{Offset: int(d.InputOffset()), Line: line, Col: col})
			}
			var se *xml.SyntaxError
			msg := err.Error()
			if errors.As(err, &se) {
				msg = se.Msg
				line = se.Line
			}
			return append(out, tok{Err: msg, Offset: int(d.InputOffset()), Line: line, Col: col})
		}
		r := tok{Offset: int(d.InputOffset()), Line: line, Col: col}
		switch t := t.(type) {
		case xml.StartElement:
			r.Kind = StartElement
			var b strings.Builder
			for _, a := range t.Attr {
				fmt.Fprintf(&b, "%s=%q ", rawName(a.Name), a.Value)
			}
			r.Attrs = b.String()
			if !nesting {
				r.Name = rawName(t.Name)
			}
		case xml.EndElement:
			r.Kind = EndElement
			if !nesting {
				r.Name = rawName(t.Name)
			}
		case xml.CharData:
			r.Kind, r.Data = CharData, string(t)
		case xml.Comment:
			r.Kind, r.Data = Comment, string(t)
		case xml.ProcInst:
			r.Kind, r.Name, r.Data = ProcInst, t.Target, string(t.Inst)
		case xml.Directive:
			r.Kind, r.Data = Directive, string(t)
		}
		if nesting && r.Kind == StartElement {
			r.Attrs = "" // names are translated by Token; compared in raw mode
		}
		out = append(out, r)
	}
	return out
}

// ourTokens reads src with a Scanner.
func ourTokens(src []byte, nesting bool) []tok {
	s := New(src)
	s.Nesting = nesting
	var out []tok
	for len(out) < maxTokens {
		k, err := s.Next()
		line, col := s.Pos()
		if err != nil {
			if err == io.EOF {
				return append(out, tok{Offset: s.Offset(), Line: line, Col: col})
			}
			msg := err.Error()
			if se, ok := err.(*SyntaxError); ok {
				msg, line, col = se.Msg, se.Line, se.Column
				if se.Offset != s.Offset() {
					panic("SyntaxError.Offset is not Offset()")
				}
			}
			return append(out, tok{Err: msg, Offset: s.Offset(), Line: line, Col: col})
		}
		r := tok{Kind: k, Offset: s.Offset(), Line: line, Col: col}
		switch k {
		case StartElement:
			if !nesting {
				r.Name = string(s.Name)
				var b strings.Builder
				for _, a := range s.Attrs {
					fmt.Fprintf(&b, "%s=%q ", a.Name, a.Value)
				}
				r.Attrs = b.String()
			}
		case EndElement:
			if !nesting {
				r.Name = string(s.Name)
			}
		case ProcInst:
			r.Name, r.Data = string(s.Name), string(s.Data)
		default:
			r.Data = string(s.Data)
		}
		out = append(out, r)
	}
	return out
}

func compareTokens(t *testing.T, src []byte, nesting bool) {
	t.Helper()
	want, got := refTokens(src, nesting), ourTokens(src, nesting)
	for i := 0; i < len(want) || i < len(got); i++ {
		var w, g tok
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			t.Fatalf("input %q (nesting %v), token %d:\nencoding/xml: %v\n     xmlscan: %v", src, nesting, i, w, g)
		}
	}
}

// scanSeeds are inputs that reach every branch of the scanner, and the
// corners of encoding/xml's behaviour it must reproduce.
var scanSeeds = []string{
	"",
	" ",
	"\uFEFF<a/>",
	`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><a b="1" c='2'>t</a>`,
	`<?xml version="1.1"?><a/>`,
	`<?xml version='1.0' encoding='latin1'?><a/>`,
	`<?xml encoding="utf-8"?>`,
	`<?xml?>`, `<?xml`, `<?`, `<? x?>`, `<?1x?>`, `<?x ?`, `<?x-y.z a?b?>`,
	`<a>x</b>`, `<a:b>x</a:c>`, `<a:b></c:b>`, `<a></a></a>`, `<a><b></a>`, `<a>`, `<a/><b/>`,
	"<a\n>\n</a\n>", "<a\r\nb='1\r\n2\r3'>\r\n\r\r\n</a>",
	`<a b="1"c="2"/>`, `<a b="1" b="2"/>`, `<a b/>`, `<a b=/>`, `<a b=1/>`, `<a b="<"/>`, `<a b="]]>"/>`,
	`<a b="&lt;&gt;&amp;&apos;&quot;&#65;&#x41;&#X41;"/>`, `<a b="&#xD800;&#55296;"/>`, `<a b="x`, `<a b="` + "\x01",
	`<a/ >`, `<a/`, `< a>`, `<1a/>`, `<a:b:c/>`, `<:a/>`, `<a:/>`, `<a :b="1"/>`, `<a b:c:d="1"/>`,
	"<\xff/>", "<a\xffb/>", "<é/>", "<aé/>", "<a\u00B7/>", "<\u00B7/>", "<a\u0300/>",
	`</>`, `</ a>`, `</a`, `</a b>`, `</a:b c>`,
	`<!-- c -->`, `<!---->`, `<!-->`, `<!--->`, `<!-- a--b -->`, `<!-- a---->`, `<!--`, `<!-x-->`, "<!--\x00\xff-->",
	`<![CDATA[x]]>`, `<![CDATA[]]>`, `<![CDATA[a]]]]><![CDATA[>b]]>`, `<![CDATA[x`, `<![CDAT`, `<![CDATX[`, "<![CDATA[\r\n\r]]>", "<![CDATA[\x01]]>", "<![CDATA[\xff]]>",
	`<!DOCTYPE a>`, `<!DOCTYPE a [<!ENTITY x "y">]>`, `<!DOCTYPE a [<!-- > -->]>`, `<!>x>`, `<!'>'>`, `<!<>>`, `<!<!x>>`, `<!DOCTYPE`, `<!DOCTYPE a [<!-- x`, "<!DOC<!--x-->TYPE>",
	"a]]>b", "a]]", "a]>", "]]", "a&amp;b", "&", "&a", "&amp", "&amp x", "&;", "& ;", "&#;", "&#x;", "&#12", "&#x1g;", "&#1a;",
	"&#0;", "&#x10FFFF;", "&#x110000;", "&#99999999999999999999;", "&#xFFFE;", "&#xD;", "&#xD;\n", "&nbsp;", "&1a;", "&a.b-c;",
	"a\x01b", "a\x0bb", "\xff", "\xed\xa0\x80", "\xef\xbf\xbe", "\xef\xbf\xbd", "a\x01b&xx;", "a\x01b]]>", "\x01<a/>",
	"&amp\n;", "&amp\nx", "<a\n", "<a b\n", "<a b=\n", "<a b=\nx", "</a\n", "<a\nb\n=\n'1'\n/\n>",
	"\n\n<a>\r\n</a>", "<a>x\r</a>", "<a>\r</a>", "\r", "\r\n", "x\r", "x\n",
	"<a>&#x9;&#xA;&#xD;</a>", `<a xmlns="u" xmlns:p="v"><p:b/></a>`, `<a xmlns:p=""><p:b/></a>`, `<xmlns:a/>`, `<xml:a/>`,
	strings.Repeat("<a>", 50) + strings.Repeat("</a>", 50),
}

func TestScanMatchesEncodingXML(t *testing.T) {
	for _, s := range scanSeeds {
		compareTokens(t, []byte(s), false)
		compareTokens(t, []byte(s), true)
	}
}

// FuzzScanMatchesEncodingXML: for every input, the scanner returns the
// tokens encoding/xml returns — kinds, names, attributes, text, offsets and
// positions — and ends with the same error at the same place, both as
// RawToken and (Nesting) as Token.
func FuzzScanMatchesEncodingXML(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		compareTokens(t, src, false)
		compareTokens(t, src, true)
	})
}

func TestSubSlices(t *testing.T) {
	src := []byte(`<a b="plain" c="x&amp;y"><![CDATA[cd]]>text</a>`)
	s := New(src)
	k, err := s.Next()
	if k != StartElement || err != nil || len(s.Attrs) != 2 {
		t.Fatal(k, err)
	}
	if !aliases(src, s.Attrs[0].Value) || aliases(src, s.Attrs[1].Value) || string(s.Attrs[1].Value) != "x&y" {
		t.Errorf("attribute values: %q %q", s.Attrs[0].Value, s.Attrs[1].Value)
	}
	for _, want := range []string{"cd", "text"} {
		if k, err := s.Next(); k != CharData || err != nil || string(s.Data) != want || !aliases(src, s.Data) {
			t.Errorf("%v %v %q, want %q from the input", k, err, s.Data, want)
		}
	}
}

func aliases(src, b []byte) bool {
	return len(b) > 0 && &src[cap(src)-cap(b)] == &b[0]
}

func TestSurrogateRef(t *testing.T) {
	src := []byte(`<a b="&#xD800;">x&#55296;</a>`)
	s := New(src)
	if k, _ := s.Next(); k != StartElement || s.SurrogateRef != 6 || string(s.Attrs[0].Value) != "\uFFFD" {
		t.Fatalf("start tag: ref at %d, value %q", s.SurrogateRef, s.Attrs[0].Value)
	}
	if k, _ := s.Next(); k != CharData || s.SurrogateRef != 17 || string(s.Data) != "x\uFFFD" {
		t.Fatalf("text: ref at %d, %q", s.SurrogateRef, s.Data)
	}
	if k, _ := s.Next(); k != EndElement || s.SurrogateRef != -1 {
		t.Fatalf("end tag: ref at %d", s.SurrogateRef)
	}
}

func TestWordTests(t *testing.T) {
	for pos := 0; pos < 8; pos++ {
		for c := 0; c < 256; c++ {
			var b [8]byte
			for i := range b {
				b[i] = 'a'
			}
			b[pos] = byte(c)
			v := uint64(0)
			for i := 7; i >= 0; i-- {
				v = v<<8 | uint64(b[i])
			}
			if got, want := printable8(v), c >= 0x20 && c < 0x80; got != want {
				t.Fatalf("printable8 with %#x at %d: %v", c, pos, got)
			}
			if c < 0x80 {
				for _, x := range []byte("<&]a") {
					if got, want := hasByte(v, x), byte(c) == x || x == 'a'; got != want {
						t.Fatalf("hasByte(%q) with %#x at %d: %v", x, c, pos, got)
					}
				}
			}
		}
	}
}
