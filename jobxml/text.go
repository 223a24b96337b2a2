package jobxml

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// TextError reports text that an XML 1.0 document cannot carry. It is a type
// of its own so that callers validating user input (job.submit) can point at
// the offending byte without parsing the message.
type TextError struct {
	Field  string // the field or wire name, e.g. "script"
	Offset int    // byte offset of the offending sequence in the text
	Rune   rune   // the forbidden character; -1 when the bytes are not valid UTF-8
	Bytes  []byte // the offending bytes as they appear in the text
}

func (e *TextError) Error() string {
	switch {
	case e.Rune >= 0xD800 && e.Rune <= 0xDFFF:
		return fmt.Sprintf("%s: byte offset %d: surrogate U+%04X (bytes % X) is not allowed in XML", e.Field, e.Offset, e.Rune, e.Bytes)
	case e.Rune >= 0:
		return fmt.Sprintf("%s: byte offset %d: character %U is not allowed in XML", e.Field, e.Offset, e.Rune)
	default:
		return fmt.Sprintf("%s: byte offset %d: invalid UTF-8 (byte 0x%02X)", e.Field, e.Offset, e.Bytes[0])
	}
}

// ValidateText returns a *TextError naming field when s is not valid UTF-8 or
// holds a character that XML 1.0 forbids. Checking at the edge (submit, encode)
// means a bad script is refused where a person can fix it, instead of
// producing a job document no agent can parse.
func ValidateText(field, s string) error {
	for i := 0; i < len(s); {
		if i+8 <= len(s) && printable8(uint64(s[i])|uint64(s[i+1])<<8|uint64(s[i+2])<<16|uint64(s[i+3])<<24|
			uint64(s[i+4])<<32|uint64(s[i+5])<<40|uint64(s[i+6])<<48|uint64(s[i+7])<<56) {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return &TextError{Field: field, Offset: i, Rune: rune(c), Bytes: []byte{c}}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			if sr, ok := encodedSurrogate(s[i:]); ok {
				return &TextError{Field: field, Offset: i, Rune: sr, Bytes: []byte(s[i : i+3])}
			}
			return &TextError{Field: field, Offset: i, Rune: -1, Bytes: []byte{c}}
		}
		if r == 0xFFFE || r == 0xFFFF {
			return &TextError{Field: field, Offset: i, Rune: r, Bytes: []byte(s[i : i+size])}
		}
		i += size
	}
	return nil
}

// printable8 reports whether the 8 bytes in v are all printable ASCII
// (0x20 to 0x7F): no high bit, and no byte below 0x20 (the "has a byte less
// than n" test, exact when no byte has its high bit set).
func printable8(v uint64) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	return v&hi == 0 && (v-0x20*lo)&^v&hi == 0
}

// encodedSurrogate recognises the three-byte UTF-8 form of a UTF-16 surrogate
// (CESU-8 / WTF-8 leftovers from Java or Windows tools), which Go's decoder
// only calls invalid UTF-8; naming the code point makes the error actionable.
func encodedSurrogate(s string) (rune, bool) {
	if len(s) < 3 || s[0] != 0xED || s[1] < 0xA0 || s[1] > 0xBF || s[2] < 0x80 || s[2] > 0xBF {
		return 0, false
	}
	return rune(s[0]&0x0F)<<12 | rune(s[1]&0x3F)<<6 | rune(s[2]&0x3F), true
}

// Sanitize returns s with every character XML cannot carry replaced by U+FFFD:
// each forbidden character, and each maximal run of bytes that is not valid
// UTF-8. Process output is arbitrary bytes, and a status report must always
// be deliverable; the marks show the reader where bytes were lost. Text that
// needs no change is returned as is, without copying.
func Sanitize(s string) string {
	i := firstUnsafe(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	inBad := false // in a run of invalid bytes, already marked
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			inBad = false
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				b.WriteRune(utf8.RuneError)
			} else {
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			if !inBad {
				b.WriteRune(utf8.RuneError)
				inBad = true
			}
		case r == 0xFFFE || r == 0xFFFF:
			inBad = false
			b.WriteRune(utf8.RuneError)
		default:
			inBad = false
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// firstUnsafe is the byte offset of the first sequence ValidateText would
// refuse, or -1.
func firstUnsafe(s string) int {
	if err := ValidateText("", s); err != nil {
		return err.(*TextError).Offset
	}
	return -1
}

// isXMLChar reports whether XML 1.0 allows r in a document (production Char).
func isXMLChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// writeText writes s as element content. '>' is escaped too, so that "]]>"
// can never appear, and CR is written as a reference so that it is not
// turned into LF by the reader's end-of-line handling.
func writeText(b *bytes.Buffer, s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\r':
			esc = "&#xD;"
		default:
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(esc)
		last = i + 1
	}
	b.WriteString(s[last:])
}

// writeAttr writes s as a double-quoted attribute value. Tab, LF and CR are
// written as references because attribute-value normalisation in conforming
// parsers would otherwise turn them into spaces.
func writeAttr(b *bytes.Buffer, s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&quot;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(esc)
		last = i + 1
	}
	b.WriteString(s[last:])
}

// writeCDATA writes s as one or more CDATA sections. A section cannot contain
// "]]>", so the text is cut between "]]" and ">" and a new section opened;
// a CR is written as &#xD; between sections because parsers normalise line
// ends inside CDATA as well. Empty text writes nothing: an empty section is
// legal but only noise.
func writeCDATA(b *bytes.Buffer, s string) {
	open := false
	for len(s) > 0 {
		if s[0] == '\r' {
			if open {
				b.WriteString("]]>")
				open = false
			}
			b.WriteString("&#xD;")
			s = s[1:]
			continue
		}
		if !open {
			b.WriteString("<![CDATA[")
			open = true
		}
		end := strings.IndexByte(s, '\r')
		if end < 0 {
			end = len(s)
		}
		chunk := s[:end]
		for {
			k := strings.Index(chunk, "]]>")
			if k < 0 {
				break
			}
			b.WriteString(chunk[:k+2])    // "...]]"
			b.WriteString("]]><![CDATA[") // close, reopen
			chunk = chunk[k+2:]           // starts with ">"
		}
		b.WriteString(chunk)
		s = s[end:]
	}
	if open {
		b.WriteString("]]>")
	}
}
