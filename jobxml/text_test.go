package jobxml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// forbidden lists one representative of every class of text XML 1.0 cannot
// hold, with the message ValidateText must give when it sits at offset 3.
var forbidden = []struct {
	name, text, msg string
	valid           bool // valid UTF-8 (so encoding/xml can be asked about it)
}{
	{"NUL", "\x00", "f: byte offset 3: character U+0000 is not allowed in XML", true},
	{"U+0001", "\x01", "f: byte offset 3: character U+0001 is not allowed in XML", true},
	{"U+0008", "\x08", "f: byte offset 3: character U+0008 is not allowed in XML", true},
	{"vertical tab", "\x0B", "f: byte offset 3: character U+000B is not allowed in XML", true},
	{"form feed", "\x0C", "f: byte offset 3: character U+000C is not allowed in XML", true},
	{"U+000E", "\x0E", "f: byte offset 3: character U+000E is not allowed in XML", true},
	{"escape", "\x1B", "f: byte offset 3: character U+001B is not allowed in XML", true},
	{"U+001F", "\x1F", "f: byte offset 3: character U+001F is not allowed in XML", true},
	{"U+FFFE", "\uFFFE", "f: byte offset 3: character U+FFFE is not allowed in XML", true},
	{"U+FFFF", "\uFFFF", "f: byte offset 3: character U+FFFF is not allowed in XML", true},
	{"high surrogate", "\xED\xA0\x80", "f: byte offset 3: surrogate U+D800 (bytes ED A0 80) is not allowed in XML", false},
	{"low surrogate", "\xED\xBF\xBF", "f: byte offset 3: surrogate U+DFFF (bytes ED BF BF) is not allowed in XML", false},
	{"lone continuation", "\x80", "f: byte offset 3: invalid UTF-8 (byte 0x80)", false},
	{"0xFF", "\xFF", "f: byte offset 3: invalid UTF-8 (byte 0xFF)", false},
	{"truncated sequence", "\xE2\x82", "f: byte offset 3: invalid UTF-8 (byte 0xE2)", false},
	{"overlong slash", "\xC0\xAF", "f: byte offset 3: invalid UTF-8 (byte 0xC0)", false},
	{"beyond U+10FFFF", "\xF4\x90\x80\x80", "f: byte offset 3: invalid UTF-8 (byte 0xF4)", false},
}

func TestValidateTextRefusesEveryForbiddenClass(t *testing.T) {
	for _, c := range forbidden {
		t.Run(c.name, func(t *testing.T) {
			err := ValidateText("f", "abc"+c.text+"xyz")
			if err == nil || err.Error() != c.msg {
				t.Fatalf("got %v, want %q", err, c.msg)
			}
			var te *TextError
			if !errors.As(err, &te) || te.Field != "f" || te.Offset != 3 {
				t.Fatalf("want *TextError at offset 3, got %#v", err)
			}
			// Our notion of "forbidden" must agree with a real XML parser.
			if c.valid {
				doc := "<a>" + c.text + "</a>"
				d := xml.NewDecoder(strings.NewReader(doc))
				var err error
				for err == nil {
					_, err = d.Token()
				}
				if err.Error() == "EOF" {
					t.Fatalf("encoding/xml accepted %q that ValidateText refuses", c.text)
				}
			}
		})
	}
}

func TestValidateTextAcceptsAllowedText(t *testing.T) {
	for _, s := range []string{
		"", "\t\n\r", " ~", "\x7F\u0080\u009F", // DEL and C1 controls are legal XML 1.0
		"\uD7FF\uE000\uFFFD", "\U00010000\U0010FFFF", "日本語 🚀 é ם",
	} {
		if err := ValidateText("f", s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
}

// Every code point: ValidateText and the XML 1.0 Char production agree.
func TestValidateTextMatchesXMLCharForEveryCodePoint(t *testing.T) {
	var buf [utf8.UTFMax]byte
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue // not encodable in UTF-8; covered by the surrogate cases
		}
		n := utf8.EncodeRune(buf[:], r)
		ok := ValidateText("f", string(buf[:n])) == nil
		if ok != isXMLChar(r) {
			t.Fatalf("%U: ValidateText ok=%v, XML Char=%v", r, ok, isXMLChar(r))
		}
	}
}

func TestValidateTextReportsFirstOffset(t *testing.T) {
	err := ValidateText("script", "echo hi\n# ok\n\x01\x02")
	if err == nil || err.Error() != "script: byte offset 13: character U+0001 is not allowed in XML" {
		t.Fatalf("got %v", err)
	}
	// Offsets count bytes, not characters.
	err = ValidateText("output", "日本\x00")
	if err == nil || err.Error() != "output: byte offset 6: character U+0000 is not allowed in XML" {
		t.Fatalf("got %v", err)
	}
}

func TestSanitize(t *testing.T) {
	for _, c := range forbidden {
		got := Sanitize("abc" + c.text + "xyz")
		if got != "abc\uFFFDxyz" {
			t.Errorf("%s: Sanitize = %q, want one U+FFFD", c.name, got)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"plain\ttext\r\n", "plain\ttext\r\n"},
		{"\x00\x01", "\uFFFD\uFFFD"},                     // each forbidden character is marked
		{"a\xff\xfe\xfdb", "a\uFFFDb"},                   // a run of bad bytes is marked once
		{"\xff\x01\xff", "\uFFFD\uFFFD\uFFFD"},           // ...but not across a character
		{"\uFFFD", "\uFFFD"},                             // a real U+FFFD stays as it is
		{"ok 日本 \xe6\x97", "ok 日本 \uFFFD"},               // output cut inside a character
		{"\xED\xA0\x80\xED\xB0\x80", "\uFFFD"},           // a surrogate pair in CESU-8
		{"x\uFFFE\uFFFFy", "x\uFFFD\uFFFDy"},             // noncharacters
		{"\x1b[31mred\x1b[0m", "\uFFFD[31mred\uFFFD[0m"}, // terminal colours
	} {
		if got := Sanitize(c.in); got != c.want {
			t.Errorf("Sanitize(%q) = %q, want %q", c.in, got, c.want)
		}
		if err := ValidateText("x", Sanitize(c.in)); err != nil {
			t.Errorf("Sanitize(%q) is still not XML text: %v", c.in, err)
		}
	}
}

func TestSanitizeDoesNotCopyCleanText(t *testing.T) {
	s := strings.Repeat("clean output line\n", 100)
	if n := testing.AllocsPerRun(10, func() { _ = Sanitize(s) }); n != 0 {
		t.Fatalf("Sanitize allocated %v times on clean text", n)
	}
}

func TestSanitizedOutputAlwaysEncodes(t *testing.T) {
	// All bytes, in an order that makes every pair appear.
	var b bytes.Buffer
	for i := 0; i < 256; i++ {
		for j := 0; j < 256; j += 7 {
			b.WriteByte(byte(i))
			b.WriteByte(byte(j))
		}
	}
	out := Sanitize(b.String())
	doc, err := EncodeStatuses([]Status{{Run: 1, State: StateRunning, Output: out}})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := DecodeStatuses(doc)
	if err != nil || ss[0].Output != out {
		t.Fatalf("sanitized output did not round-trip: %v", err)
	}
}

func TestEncodeJobRefusesForbiddenText(t *testing.T) {
	for _, c := range []struct {
		field string
		set   func(*Job)
		want  string
	}{
		{"name", func(j *Job) { j.Name = "a\x01" }, "job document: name: byte offset 1: character U+0001 is not allowed in XML"},
		{"permission", func(j *Job) { j.Permission = "\uFFFE" }, "job document: permission: byte offset 0: character U+FFFE is not allowed in XML"},
		{"submitted-by", func(j *Job) { j.SubmittedBy = "bob\xff" }, "job document: submitted-by: byte offset 3: invalid UTF-8 (byte 0xFF)"},
		{"interpreter", func(j *Job) { j.Interpreter = "/bin/sh\x00" }, "job document: interpreter: byte offset 7: character U+0000 is not allowed in XML"},
		{"script", func(j *Job) { j.Script = "echo \x1b[1mhi" }, "job document: script: byte offset 5: character U+001B is not allowed in XML"},
		{"script surrogate", func(j *Job) { j.Script = "\xED\xB2\x80" }, "job document: script: byte offset 0: surrogate U+DC80 (bytes ED B2 80) is not allowed in XML"},
	} {
		j := baseJob()
		c.set(&j)
		b, err := EncodeJob(j)
		if err == nil {
			t.Errorf("%s: encoded %q", c.field, b)
			continue
		}
		if got := err.Error(); got != c.want {
			t.Errorf("%s: got %q, want %q", c.field, got, c.want)
		}
		var te *TextError
		if !errors.As(err, &te) {
			t.Errorf("%s: %v does not wrap *TextError", c.field, err)
		}
	}
}

func TestEncodeStatusesRefusesForbiddenOutput(t *testing.T) {
	_, err := EncodeStatuses([]Status{{Run: 7, State: StateRunning, Output: "ok\x07"}})
	if err == nil || err.Error() != "status document: run 7: output: byte offset 2: character U+0007 is not allowed in XML" {
		t.Fatalf("got %v", err)
	}
	_, err = EncodeStatuses([]Status{{Run: 7, State: StateRunning}, {Run: 8, State: StateRunning, Output: "\xc3"}})
	if err == nil || err.Error() != "status document: status #2 (run 8): output: byte offset 0: invalid UTF-8 (byte 0xC3)" {
		t.Fatalf("got %v", err)
	}
}
