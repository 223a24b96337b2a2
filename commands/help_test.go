package commands

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// eachCommand calls fn for every user-facing command of a fresh tree.
func eachCommand(fn func(c *cobra.Command)) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" || c.Parent() != nil && c.Parent().Name() == "completion" {
			return
		}
		fn(c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRoot(&IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}))
}

func TestEveryCommandHasADescription(t *testing.T) {
	eachCommand(func(c *cobra.Command) {
		if strings.TrimSpace(c.Long) == "" {
			t.Errorf("%q has no description (Long)", c.CommandPath())
		}
	})
}

// TestExamplesParse checks that every scirectl invocation in every example
// names a real command, with flags it has and arguments it accepts.
func TestExamplesParse(t *testing.T) {
	n := 0
	eachCommand(func(c *cobra.Command) {
		for _, inv := range invocations(c.Example) {
			n++
			root := NewRoot(&IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard})
			cmd, rest, err := root.Find(inv)
			if err != nil || cmd == root {
				t.Errorf("%s: example %q names no command (%v)", c.CommandPath(), strings.Join(inv, " "), err)
				continue
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("%s: example %q: %v", c.CommandPath(), strings.Join(inv, " "), err)
				continue
			}
			if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
				t.Errorf("%s: example %q: %v", c.CommandPath(), strings.Join(inv, " "), err)
			}
			if err := cmd.ValidateFlagGroups(); err != nil {
				t.Errorf("%s: example %q: %v", c.CommandPath(), strings.Join(inv, " "), err)
			}
		}
	})
	if n < 50 {
		t.Errorf("found only %d scirectl invocations in the examples", n)
	}
}

// invocations finds each "scirectl …" in a shell example and splits it into
// words, up to the next shell operator; quotes are honoured and a trailing
// backslash joins lines.
func invocations(example string) [][]string {
	var out [][]string
	var lines []string
	cur := ""
	for _, l := range strings.Split(example, "\n") {
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		lines = append(lines, cur+l)
		cur = ""
	}
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") {
			continue
		}
		var words []string // words of the current simple command
		var word strings.Builder
		inWord, quote := false, rune(0)
		flush := func() {
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		}
		end := func() { // a shell operator: keep what follows scirectl
			flush()
			for i, w := range words {
				if w == "scirectl" {
					out = append(out, words[i+1:])
					break
				}
			}
			words = nil
		}
		rs := []rune(l)
		for i := 0; i < len(rs); i++ {
			r := rs[i]
			switch {
			case quote != 0:
				if r == quote {
					quote = 0
				} else {
					word.WriteRune(r)
				}
			case r == '\'' || r == '"':
				quote, inWord = r, true
			case r == '$' && i+1 < len(rs) && rs[i+1] == '(':
				end() // a command substitution starts a new command
				i++
			case r == ' ' || r == '\t':
				flush()
			case strings.ContainsRune("|&;)<>`", r):
				end()
			case r == '#' && !inWord:
				i = len(rs)
			default:
				word.WriteRune(r)
				inWord = true
			}
		}
		end()
	}
	return out
}
