package commands

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/olekukonko/tablewriter/pkg/twwidth"
	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/selector"
)

// Choosing machines: --selector on client list and job submit (package
// selector's syntax), and a client's facts and labels as tables show them.

// addSelectorFlag adds --selector, repeatable. Each value is one selector,
// commas and all (a StringArray, not a StringSlice, which would split
// 'env=prod,tier=web' into two).
func addSelectorFlag(cmd *cobra.Command, sels *[]string, usage string) {
	cmd.Flags().StringArrayVar(sels, "selector", nil, usage)
	_ = cmd.RegisterFlagCompletionFunc("selector", cobra.NoFileCompletions)
}

// checkSelectors parses --selector values as the server will, so that a
// typo is a usage error naming the selector and the position, with the
// selector and a caret under it, rather than a fault after a round trip.
func checkSelectors(sels []string) error {
	// selector.ParseUnion's checks, one selector at a time, to point at
	// the one that fails.
	for _, s := range sels {
		_, err := selector.Parse(s)
		if err == nil {
			continue
		}
		msg := fmt.Sprintf("--selector %q: %v", s, err)
		var se *selector.Error
		if errors.As(err, &se) {
			if c := caret(s, se.Pos); c != "" {
				msg += "\n" + c
			}
		}
		return usageError(msg)
	}
	return nil
}

// caret shows s with a caret under its pos'th character (1-based), or
// returns "" when s holds a tab or a line break, which would misplace it.
func caret(s string, pos int) string {
	if strings.ContainsAny(s, "\t\r\n") || pos < 1 {
		return ""
	}
	rs := []rune(s)
	pos = min(pos, len(rs)+1)
	return "  " + s + "\n  " + strings.Repeat(" ", twwidth.Width(string(rs[:pos-1]))) + "^"
}

// withMaps gives each client empty facts and labels where it has none, so
// that -o json always has the two objects, even from a server that sends
// neither.
func withMaps(cs []api.Client) []api.Client {
	for i := range cs {
		if cs[i].Facts == nil {
			cs[i].Facts = map[string]string{}
		}
		if cs[i].Labels == nil {
			cs[i].Labels = map[string]string{}
		}
	}
	return nonNil(cs)
}

// labelsText is a client's labels for a table cell: KEY=VALUE, sorted by
// key, comma-separated (so it reads as a selector that matches the
// client), or "-" when it has none.
func labelsText(labels map[string]string) string {
	if len(labels) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(labels)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + labels[k])
	}
	return b.String()
}

// valueText is a label's or a fact's value for a table cell: an empty
// value, which a selector can still ask for (KEY=), shows as "".
func valueText(v string) string {
	if v == "" {
		return `""`
	}
	return v
}
