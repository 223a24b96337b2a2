package blacklist

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ParseError is why a blacklist was refused and where. The server stops at
// start with it, so it names the file, the line and the column (both 1-based,
// the column in runes) the way compilers do, for editors to jump to.
type ParseError struct {
	File   string // the name given to Parse (Load gives the path)
	Line   int
	Col    int
	Reason string
}

// Error formats the error as "file:line:col: reason" (without "file:" when
// File is empty).
func (e *ParseError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Reason)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Reason)
}

// Parse reads a blacklist in either form (see the package documentation) and
// checks every entry against known, the names of all operations the server
// serves: an entry that matches none of them is an error, because a typo
// would otherwise leave the operation it meant allowed. name is the file name
// put in errors. Any error is a *ParseError; only the first one is reported.
func Parse(name string, data []byte, known []string) (*List, error) {
	s := newScanner(data)
	if perr := s.checkUTF8(); perr != nil {
		perr.File = name
		return nil, perr
	}
	var entries []Entry
	var perr *ParseError
	switch s.form() {
	case '[':
		entries, perr = s.parseErlang()
	case eof: // only blanks and '%' comments: nothing is denied
	default:
		entries, perr = s.parseLines()
	}
	if perr != nil {
		perr.File = name
		return nil, perr
	}
	for _, e := range entries {
		if reason := checkKnown(e.Pattern, known); reason != "" {
			return nil, &ParseError{File: name, Line: e.Line, Col: e.Col, Reason: reason}
		}
	}
	return newList(entries), nil
}

// scanner walks the input rune by rune and knows the line and column of the
// next rune. The input is valid UTF-8 once checkUTF8 has passed.
type scanner struct {
	src       []byte
	off       int
	line, col int
}

const eof = -1

var bom = []byte("\xEF\xBB\xBF")

func newScanner(data []byte) *scanner {
	s := &scanner{src: data, line: 1, col: 1}
	if bytes.HasPrefix(data, bom) {
		s.off = len(bom) // editors do not show it, so it takes no column
	}
	return s
}

func (s *scanner) peek() rune {
	if s.off >= len(s.src) {
		return eof
	}
	r, _ := utf8.DecodeRune(s.src[s.off:])
	return r
}

// peek2 returns the rune after the next one.
func (s *scanner) peek2() rune {
	if s.off >= len(s.src) {
		return eof
	}
	_, n := utf8.DecodeRune(s.src[s.off:])
	if s.off+n >= len(s.src) {
		return eof
	}
	r, _ := utf8.DecodeRune(s.src[s.off+n:])
	return r
}

func (s *scanner) next() rune {
	if s.off >= len(s.src) {
		return eof
	}
	r, n := utf8.DecodeRune(s.src[s.off:])
	s.off += n
	if r == '\n' {
		s.line, s.col = s.line+1, 1
	} else {
		s.col++
	}
	return r
}

func (s *scanner) errHere(reason string) *ParseError {
	return &ParseError{Line: s.line, Col: s.col, Reason: reason}
}

// checkUTF8 finds the first byte that is not valid UTF-8: past it, columns
// would mean nothing.
func (s *scanner) checkUTF8() *ParseError {
	t := *s
	for t.off < len(t.src) {
		if r, n := utf8.DecodeRune(t.src[t.off:]); r == utf8.RuneError && n == 1 {
			return t.errHere("invalid UTF-8 encoding")
		}
		t.next()
	}
	return nil
}

// isBlank is whitespace within a line.
func isBlank(r rune) bool {
	return r == ' ' || r == '\t' || r == '\r' || r == '\f' || r == '\v'
}

func (s *scanner) skipToEOL() {
	for r := s.peek(); r != eof && r != '\n'; r = s.peek() {
		s.next()
	}
}

// skipErlangSpace skips whitespace and '%' comments.
func (s *scanner) skipErlangSpace() {
	for {
		switch r := s.peek(); {
		case isBlank(r) || r == '\n':
			s.next()
		case r == '%':
			s.skipToEOL()
		default:
			return
		}
	}
}

// form returns the first significant character, after blanks and '%'
// comments: '[' for the Erlang-term form, eof for a file of comments only
// (in either form: an empty list), anything else for the line form. It does
// not move s.
func (s *scanner) form() rune {
	t := *s
	t.skipErlangSpace()
	return t.peek()
}

// The Erlang-term form.

type tokKind int

const (
	tkEOF    tokKind = iota
	tkName           // unquoted atom, quoted atom or string: an operation name
	tkPunct          // any other single character: [ ] , . { ( ...
	tkNumber         // an Erlang number, always wrong here
	tkVar            // an Erlang variable (capital or '_' first), always wrong here
)

type token struct {
	kind            tokKind
	text            string // tkName: the name, unquoted; otherwise the source text
	line, col       int    // where it starts
	endLine, endCol int    // just after it
}

func isAtomRune(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
		r == '_' || r == '@' || r == '*'
}

// token reads the next token of the Erlang-term form.
func (s *scanner) token() (token, *ParseError) {
	s.skipErlangSpace()
	t := token{line: s.line, col: s.col}
	start := s.off
	r := s.peek()
	switch {
	case r == eof:
		t.kind = tkEOF
	case 'a' <= r && r <= 'z' || r == '*':
		// An unquoted atom. As in RefactorErl's usage ("job.submit"), a dot
		// belongs to it when an atom character follows; otherwise it is the
		// terminating dot or an error the parser reports.
		t.kind = tkName
		for s.next(); isAtomRune(s.peek()) || s.peek() == '.' && isAtomRune(s.peek2()); {
			s.next()
		}
	case 'A' <= r && r <= 'Z' || r == '_':
		t.kind = tkVar
		for s.next(); isAtomRune(s.peek()); {
			s.next()
		}
	case '0' <= r && r <= '9':
		t.kind = tkNumber
		for s.next(); ; s.next() {
			p := s.peek()
			if !(isAtomRune(p) || p == '#' || p == '.' && '0' <= s.peek2() && s.peek2() <= '9') {
				break
			}
		}
	case r == '\'' || r == '"':
		name, perr := s.quoted()
		if perr != nil {
			return t, perr
		}
		t.kind, t.text = tkName, name
	default:
		t.kind = tkPunct
		s.next()
	}
	if t.text == "" {
		t.text = string(s.src[start:s.off])
	}
	t.endLine, t.endCol = s.line, s.col
	return t, nil
}

// quoted reads a quoted atom or a string. The closing quote must be on the
// same line: a name never spans lines, and an unclosed quote is then
// reported where it opens rather than wherever the next quote happens to be.
func (s *scanner) quoted() (string, *ParseError) {
	q := s.peek()
	open := s.errHere("")
	// First find the closing quote, so that an unclosed quote is reported as
	// such and not as whatever it swallowed.
	t := *s
	t.next()
	for {
		r := t.next()
		if r == eof || r == '\n' {
			open.Reason = fmt.Sprintf("unterminated quoted name: missing closing %c", q)
			return "", open
		}
		if r == q {
			break
		}
		if r == '\\' && t.peek() != eof && t.peek() != '\n' {
			t.next()
		}
	}
	var b strings.Builder
	s.next()
	for {
		at := *s
		r := s.next()
		if r == q {
			break
		}
		if r == '\\' {
			e := s.next()
			if e != '\\' && e != '\'' && e != '"' {
				esc := fmt.Sprintf(`\%c`, e)
				if !unicode.IsPrint(e) {
					esc = fmt.Sprintf(`\%U`, e)
				}
				return "", at.errHere(fmt.Sprintf(`unsupported escape %s in quoted name (only \\, \' and \" are allowed)`, esc))
			}
			r = e
		}
		if !isNameRune(r) {
			return "", at.errHere(invalidChar(r))
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 {
		open.Reason = "empty operation name"
		return "", open
	}
	return b.String(), nil
}

func (t token) is(r rune) bool { return t.kind == tkPunct && t.text == string(r) }

func (t token) errAt(reason string) *ParseError {
	return &ParseError{Line: t.line, Col: t.col, Reason: reason}
}

// describe names a token in "found ..." messages, with a hint where the
// mistake is a common one.
func describe(t token) string {
	switch t.kind {
	case tkEOF:
		return "end of file"
	case tkName:
		return fmt.Sprintf("name %q", t.text)
	case tkNumber:
		return "number " + t.text
	case tkVar:
		return "variable " + t.text + " (unquoted names start with a lowercase letter)"
	}
	r, _ := utf8.DecodeRuneInString(t.text)
	d := fmt.Sprintf("%q", r)
	switch r {
	case '{':
		d += " (tuples are not allowed: the list holds only names)"
	case '[':
		d += " (nested lists are not allowed: the list holds only names)"
	case '#':
		d += " (comments start with % in the Erlang-term form)"
	}
	return d
}

// parseErlang reads `[name, ...].` and nothing else. Something missing at the
// end of the file is reported just after the last token, where it belongs.
func (s *scanner) parseErlang() ([]Entry, *ParseError) {
	open, _ := s.token() // form saw '['
	unclosed := fmt.Sprintf("unexpected end of file: the list opened at %d:%d is not closed with ']'", open.line, open.col)
	endOf := func(t token) *ParseError { return &ParseError{Line: t.endLine, Col: t.endCol} }

	var entries []Entry
	prev := open
	want := "expected an operation name or ']'"
	tok, perr := s.token()
	if perr != nil {
		return nil, perr
	}
	if !tok.is(']') {
		for {
			switch tok.kind {
			case tkName:
			case tkEOF:
				e := endOf(prev)
				e.Reason = unclosed
				return nil, e
			default:
				return nil, tok.errAt(want + ", found " + describe(tok))
			}
			entries = append(entries, Entry{Pattern: tok.text, Line: tok.line, Col: tok.col})
			sep, perr := s.token()
			if perr != nil {
				return nil, perr
			}
			switch {
			case sep.is(','):
			case sep.is(']'):
				tok = sep
			case sep.kind == tkEOF:
				e := endOf(tok)
				e.Reason = unclosed
				return nil, e
			default:
				return nil, sep.errAt(fmt.Sprintf("expected ',' or ']' after %q, found %s", tok.text, describe(sep)))
			}
			if sep.is(']') {
				break
			}
			prev, want = sep, "expected an operation name after ','"
			if tok, perr = s.token(); perr != nil {
				return nil, perr
			}
		}
	}
	closing := tok
	dot, perr := s.token()
	if perr != nil {
		return nil, perr
	}
	if dot.kind == tkEOF {
		e := endOf(closing)
		e.Reason = "missing '.' after the closing ']'"
		return nil, e
	}
	if !dot.is('.') {
		return nil, dot.errAt("expected '.' after the closing ']', found " + describe(dot))
	}
	extra, perr := s.token()
	if perr != nil {
		return nil, perr
	}
	if extra.kind != tkEOF {
		return nil, extra.errAt("unexpected " + describe(extra) + " after the final '.': the file holds a single list")
	}
	return entries, nil
}

// The line form.

// parseLines reads one name per line with '#' comments.
func (s *scanner) parseLines() ([]Entry, *ParseError) {
	var entries []Entry
	for {
		for isBlank(s.peek()) {
			s.next()
		}
		switch s.peek() {
		case eof:
			return entries, nil
		case '\n':
			s.next()
			continue
		case '#':
			s.skipToEOL()
			continue
		}
		e := Entry{Line: s.line, Col: s.col}
		start := s.off
		for r := s.peek(); r != eof && r != '\n' && r != '#' && !isBlank(r); r = s.peek() {
			if !isNameRune(r) {
				return nil, s.errHere(invalidChar(r) + lineFormHint(r))
			}
			s.next()
		}
		e.Pattern = string(s.src[start:s.off])
		entries = append(entries, e)
		for isBlank(s.peek()) {
			s.next()
		}
		switch r := s.peek(); r {
		case eof, '\n', '#':
		case '%':
			return nil, s.errHere("unexpected '%' after the name: comments start with # in the one-name-per-line form")
		default:
			return nil, s.errHere("more than one name on the line: write one name per line")
		}
	}
}

// lineFormHint explains characters that suggest the writer meant the other
// form.
func lineFormHint(r rune) string {
	switch r {
	case ',':
		return " (write one name per line)"
	case '%':
		return " (comments start with # in the one-name-per-line form)"
	case '\'', '"', '[', ']':
		return " (the Erlang-term form must start with '[' as the first thing in the file; this file is read as one name per line)"
	}
	return ""
}
