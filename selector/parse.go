package selector

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Error is why a selector was refused and where. A selector is one line an
// operator typed, so the place is a column: commands can print the
// selector with a caret under it.
type Error struct {
	// Pos is the 1-based column, in characters, of the offending
	// character, or of the last character when something is missing at
	// the end ("env in (prod": position 12, missing ')').
	Pos int
	Msg string // what was expected, or what is wrong
}

// Error formats the error as "position N: message".
func (e *Error) Error() string { return fmt.Sprintf("position %d: %s", e.Pos, e.Msg) }

func errAt(pos int, msg string) *Error { return &Error{Pos: pos, Msg: msg} }

// Limits of Kubernetes' label keys and values, and the larger ones this
// package allows fact values (see the package documentation).
const (
	maxName      = 63
	maxPrefix    = 253
	maxFactValue = 253
)

// Parse reads a selector (see the package documentation for the syntax).
// Any error is an *Error; the empty string, or blanks alone, is the error
// "empty selector".
func Parse(s string) (Selector, error) {
	p := parser{lx: lexer{src: s, col: 1}}
	p.advance()
	if p.tok.kind == tkEOF {
		return Selector{}, errAt(1, "empty selector")
	}
	var reqs []requirement
	for {
		r, e := p.requirement()
		if e != nil {
			return Selector{}, e
		}
		reqs = append(reqs, r)
		switch p.tok.kind {
		case tkEOF:
			return Selector{reqs: reqs}, nil
		case tkComma:
			p.advance()
			if p.tok.kind == tkEOF {
				return Selector{}, errAt(p.tok.pos, "expected a key after ','")
			}
		default:
			if r.op == opNotExists && p.tok.isOperator() {
				return Selector{}, errAt(p.tok.pos, "expected ',' (!KEY takes no operator: write KEY!=VALUE or KEY notin (...))")
			}
			return Selector{}, errAt(p.tok.pos, "expected ','")
		}
	}
}

type tokKind uint8

const (
	tkEOF    tokKind = iota
	tkWord           // a key, a value, in or notin
	tkComma          // ,
	tkLParen         // (
	tkRParen         // )
	tkEq             // =
	tkEqEq           // ==
	tkNotEq          // !=
	tkBang           // !
)

type token struct {
	kind tokKind
	text string // the source text
	pos  int    // 1-based column of its first character
}

func (t token) isOperator() bool {
	switch t.kind {
	case tkEq, tkEqEq, tkNotEq:
		return true
	case tkWord:
		return t.text == "in" || t.text == "notin"
	}
	return false
}

// lexer splits a selector into tokens as Kubernetes' does: a word is a run
// of anything but blanks and the characters of operators and lists, so
// that a character no key or value may hold is reported inside its word,
// by what the word is, rather than as a stray token.
type lexer struct {
	src string
	off int // byte offset of the next character
	col int // 1-based column of the next character
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isSpecial(c byte) bool {
	return c == ',' || c == '(' || c == ')' || c == '=' || c == '!'
}

func (l *lexer) next() token {
	for l.off < len(l.src) && isBlank(l.src[l.off]) {
		l.off++
		l.col++
	}
	t := token{pos: l.col}
	if l.off >= len(l.src) {
		t.pos = max(l.col-1, 1) // the end: where the input stops
		return t
	}
	start := l.off
	width := 1
	switch c := l.src[l.off]; c {
	case ',':
		t.kind = tkComma
	case '(':
		t.kind = tkLParen
	case ')':
		t.kind = tkRParen
	case '=', '!':
		t.kind = tkEq
		if c == '!' {
			t.kind = tkBang
		}
		if l.off+1 < len(l.src) && l.src[l.off+1] == '=' {
			t.kind, width = tkEqEq, 2
			if c == '!' {
				t.kind = tkNotEq
			}
		}
	default:
		t.kind = tkWord
		for l.off < len(l.src) && !isBlank(l.src[l.off]) && !isSpecial(l.src[l.off]) {
			_, w := utf8.DecodeRuneInString(l.src[l.off:])
			l.off += w
			l.col++
		}
		t.text = l.src[start:l.off]
		return t
	}
	l.off += width
	l.col += width
	t.text = l.src[start:l.off]
	return t
}

// parser is a recursive-descent parser with one token of lookahead, tok.
type parser struct {
	lx  lexer
	tok token
}

func (p *parser) advance() { p.tok = p.lx.next() }

// requirement reads one requirement, starting at tok, and leaves tok on
// the token after it.
func (p *parser) requirement() (requirement, *Error) {
	var r requirement
	if p.tok.kind == tkBang {
		p.advance()
		if p.tok.kind != tkWord {
			return r, errAt(p.tok.pos, "expected a key after '!'")
		}
		if e := p.key(&r); e != nil {
			return r, e
		}
		r.op = opNotExists
		p.advance()
		return r, nil
	}
	if p.tok.kind != tkWord {
		return r, errAt(p.tok.pos, "expected a key")
	}
	if e := p.key(&r); e != nil {
		return r, e
	}
	p.advance()
	switch {
	case p.tok.kind == tkEOF || p.tok.kind == tkComma:
		r.op = opExists
		return r, nil
	case p.tok.kind == tkEq || p.tok.kind == tkEqEq || p.tok.kind == tkNotEq:
		r.op = opEquals
		if p.tok.kind == tkNotEq {
			r.op = opNotEquals
		}
		p.advance()
		v := "" // KEY= compares with the empty value, as in Kubernetes
		switch p.tok.kind {
		case tkWord:
			if e := checkValue(p.tok.text, p.tok.pos, r.fact); e != nil {
				return r, e
			}
			v = p.tok.text
			p.advance()
		case tkEOF, tkComma:
		default:
			return r, errAt(p.tok.pos, "expected a value")
		}
		r.values = []string{v}
		return r, nil
	case p.tok.isOperator(): // in, notin
		r.op = opIn
		if p.tok.text == "notin" {
			r.op = opNotIn
		}
		kw := p.tok.text
		p.advance()
		if p.tok.kind != tkLParen {
			return r, errAt(p.tok.pos, fmt.Sprintf("expected '(' after '%s'", kw))
		}
		p.advance()
		if p.tok.kind == tkRParen {
			return r, errAt(p.tok.pos, "empty value list")
		}
		return r, p.values(&r)
	default:
		return r, errAt(p.tok.pos, "expected an operator (=, ==, !=, in, notin) or ','")
	}
}

// values reads the rest of a value list, from its first value to its
// ')', into r.values, dropping duplicates.
func (p *parser) values(r *requirement) *Error {
	seen := make(map[string]bool)
	for {
		switch p.tok.kind {
		case tkWord:
			if e := checkValue(p.tok.text, p.tok.pos, r.fact); e != nil {
				return e
			}
			if !seen[p.tok.text] {
				seen[p.tok.text] = true
				r.values = append(r.values, p.tok.text)
			}
		case tkEOF:
			return errAt(p.tok.pos, "missing ')'")
		default:
			return errAt(p.tok.pos, "expected a value")
		}
		p.advance()
		switch p.tok.kind {
		case tkRParen:
			p.advance()
			if len(r.values) > longList {
				r.set = seen
			}
			return nil
		case tkComma:
			p.advance()
		case tkEOF:
			return errAt(p.tok.pos, "missing ')'")
		default:
			return errAt(p.tok.pos, "expected ',' or ')'")
		}
	}
}

// key reads the key at tok into r.
func (p *parser) key(r *requirement) *Error {
	text, pos := p.tok.text, p.tok.pos
	if k, ok := strings.CutPrefix(text, factPrefix); ok {
		r.fact = true
		text, pos = k, pos+len(factPrefix)
		if text == "" {
			return errAt(pos, "expected a fact's key after 'fact.'")
		}
	}
	if e := checkKey(text, pos); e != nil {
		return e
	}
	r.key = text
	return nil
}

// checkKey checks a key (without "fact.") that starts at column pos:
// Kubernetes' qualified name, an optional DNS-subdomain prefix and '/',
// then a name.
func checkKey(s string, pos int) *Error {
	prefix, name, slash := strings.Cut(s, "/")
	if !slash {
		return checkName(s, pos, "key", maxName, false)
	}
	if prefix == "" {
		return errAt(pos, "empty key prefix before '/'")
	}
	if e := checkPrefix(prefix, pos); e != nil {
		return e
	}
	pos += len(prefix) + 1 // the prefix is ASCII now
	if name == "" {
		return errAt(pos, "empty key name after '/'")
	}
	if i := strings.IndexByte(name, '/'); i >= 0 {
		// Report what comes first: a bad character before the '/' is
		// nearer the start of the mistake.
		if e := checkName(name[:i], pos, "key name", maxName, false); e != nil {
			return e
		}
		return errAt(pos+utf8.RuneCountInString(name[:i]), "more than one '/' in key")
	}
	return checkName(name, pos, "key name", maxName, false)
}

// checkValue checks a value that starts at column pos. An empty value is
// valid (KEY=); fact values may also hold '+' and be longer.
func checkValue(s string, pos int, fact bool) *Error {
	if fact {
		return checkName(s, pos, "value", maxFactValue, true)
	}
	return checkName(s, pos, "value", maxName, false)
}

func isAlnum(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
}

// checkName checks a name or value (what) at column pos: at most max
// letters, digits, '-', '_' and '.' (and '+' when plus), beginning and
// ending with a letter or digit (or '+' when plus).
func checkName(s string, pos int, what string, max int, plus bool) *Error {
	edge := func(r rune) bool { return isAlnum(r) || plus && r == '+' }
	edges, allowed := "a letter or digit", "letters, digits, '-', '_' and '.'"
	if plus {
		edges, allowed = "a letter, digit or '+'", "letters, digits, '-', '_', '.' and '+'"
	}
	n := 0
	var last rune
	for i := 0; i < len(s); n++ {
		r, w := utf8.DecodeRuneInString(s[i:])
		col := pos + n
		switch {
		case r == utf8.RuneError && w == 1:
			return errAt(col, "invalid UTF-8 in "+what)
		case !edge(r) && r != '-' && r != '_' && r != '.':
			return errAt(col, fmt.Sprintf("invalid character %q in %s (allowed: %s)%s", r, what, allowed, hint(r)))
		case n == 0 && !edge(r):
			return errAt(col, fmt.Sprintf("%s must begin with %s", what, edges))
		case n == max:
			return errAt(col, fmt.Sprintf("%s longer than %d characters", what, max))
		}
		i += w
		last = r
	}
	if n > 0 && !edge(last) {
		return errAt(pos+n-1, fmt.Sprintf("%s must end with %s", what, edges))
	}
	return nil
}

// checkPrefix checks a key's prefix at column pos: a DNS subdomain, as in
// Kubernetes (lowercase; parts that begin and end with a letter or
// digit; 253 characters at most).
func checkPrefix(s string, pos int) *Error {
	const what = "key prefix"
	prev := '.' // a part starts after a '.' or at the beginning
	n := 0
	for i := 0; i < len(s); n++ {
		r, w := utf8.DecodeRuneInString(s[i:])
		col := pos + n
		switch {
		case r == utf8.RuneError && w == 1:
			return errAt(col, "invalid UTF-8 in "+what)
		case !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '.'):
			return errAt(col, fmt.Sprintf("invalid character %q in %s (a DNS subdomain: lowercase letters, digits, '-' and '.')%s", r, what, hint(r)))
		case prev == '.' && (r == '.' || r == '-'):
			return errAt(col, "each dot-separated part of a key prefix must begin with a lowercase letter or digit")
		case r == '.' && prev == '-':
			return errAt(col-1, "each dot-separated part of a key prefix must end with a lowercase letter or digit")
		case n == maxPrefix:
			return errAt(col, fmt.Sprintf("%s longer than %d characters", what, maxPrefix))
		}
		i += w
		prev = r
	}
	if prev == '.' || prev == '-' {
		return errAt(pos+n-1, "each dot-separated part of a key prefix must end with a lowercase letter or digit")
	}
	return nil
}

// hint explains characters that suggest another syntax.
func hint(r rune) string {
	switch r {
	case '<', '>':
		return "; there are no '<' and '>' operators: values are compared for equality"
	case '"', '\'':
		return "; values are not quoted"
	case '*', '?':
		return "; selectors have no wildcards: list the values with KEY in (A,B)"
	case '&', '|':
		return "; requirements are joined by ',' (and); repeat --selector for or"
	}
	return ""
}
