package commands

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/pkg/twwidth"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// clock is the time tables measure "3m ago" from; tests fix it.
var clock = time.Now

// outputOptions are -o/--output, --no-headers and, on the commands that
// print ids, -q/--quiet.
type outputOptions struct {
	Format    string
	NoHeaders bool
	Quiet     bool
	flag      *pflag.Flag // -o itself, to tell the default from a choice
}

var outputFormats = []string{"table", "wide", "json"}

// wantFormat ends the message of a bad -o value.
const wantFormat = "want table or json (or wide, a table with more columns)"

func addOutputFlag(cmd *cobra.Command, o *outputOptions) {
	f := cmd.Flags()
	f.StringVarP(&o.Format, "output", "o", "table",
		"output format: table, wide (a table with more columns) or json (default $SCIRE_OUTPUT, else the config file's output:, else table)")
	f.BoolVar(&o.NoHeaders, "no-headers", false, "print tables without their header line")
	o.flag = f.Lookup("output")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputFormats, cobra.ShellCompDirectiveNoFileComp))
}

// addQuietFlag adds -q/--quiet to a command that prints ids.
func addQuietFlag(cmd *cobra.Command, o *outputOptions, what string) {
	cmd.Flags().BoolVarP(&o.Quiet, "quiet", "q", false, "print only "+what+", one per line")
}

// validate settles the format: -o, else $SCIRE_OUTPUT, else the config
// file, else table.
func (o *outputOptions) validate() error {
	if o.flag != nil && !o.flag.Changed {
		if v := os.Getenv("SCIRE_OUTPUT"); v != "" {
			if !validFormat(v) {
				return usageError(fmt.Sprintf("$SCIRE_OUTPUT %q: "+wantFormat, v))
			}
			o.Format = v
		} else {
			cfg, err := loadCLIConfig()
			if err != nil {
				return err
			}
			if cfg.Output.Value != "" {
				o.Format = cfg.Output.Value
			}
		}
	}
	if !validFormat(o.Format) {
		return usageError(fmt.Sprintf("--output %q: "+wantFormat, o.Format))
	}
	return nil
}

func validFormat(f string) bool {
	for _, v := range outputFormats {
		if f == v {
			return true
		}
	}
	return false
}

// json reports whether to print JSON; -q wins over -o json.
func (o *outputOptions) json() bool { return o != nil && o.Format == "json" && !o.Quiet }

// wide reports whether tables get their extra columns.
func (o *outputOptions) wide() bool { return o != nil && o.Format == "wide" }

// printIDs writes one id per line, for -q.
func printIDs(w io.Writer, ids []string) error {
	for _, id := range ids {
		if _, err := fmt.Fprintln(w, id); err != nil {
			return err
		}
	}
	return nil
}

// printJSON writes v as indented JSON; field names are the api package's
// snake_case tags (docs/cli-output.md lists them per command).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// terminalWidth is the width of the terminal w writes to, or 0 when w is
// not a terminal (a pipe, a file, a buffer in a test).
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return width
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printTable writes a borderless table in the style of kubectl: columns
// two spaces apart, no spaces at the ends of lines. On a terminal the
// widest columns are cut (with …) so that no line wraps; in a pipe every
// cell is printed whole. o may be nil (headers, no cutting).
func printTable(w io.Writer, o *outputOptions, header []string, rows [][]string) error {
	if width := terminalWidth(w); width > 0 {
		header, rows = fitTable(header, rows, width)
	}
	var buf bytes.Buffer
	t := tablewriter.NewTable(&buf,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders: tw.BorderNone,
			Symbols: tw.NewSymbols(tw.StyleNone),
			Settings: tw.Settings{
				Separators: tw.Separators{BetweenRows: tw.Off, BetweenColumns: tw.Off, ShowHeader: tw.Off},
				Lines:      tw.Lines{ShowHeaderLine: tw.Off},
			},
		})),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
	)
	if o == nil || !o.NoHeaders {
		hdr := make([]any, len(header))
		for i, h := range header {
			hdr[i] = h
		}
		t.Header(hdr...)
	}
	for _, r := range rows {
		if err := t.Append(r); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	// The renderer pads every cell with a space on each side.
	var out bytes.Buffer
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line == "" {
			continue
		}
		line = strings.TrimRight(strings.TrimPrefix(line, " "), " \n")
		out.WriteString(line + "\n")
	}
	_, err := w.Write(out.Bytes())
	return err
}

// minColumn is the narrowest a column is cut to (header permitting).
const minColumn = 6

// fitTable cuts cells so that the table's lines fit in width columns: the
// widest column loses a character at a time, down to its header's width or
// minColumn, and a cut cell ends in "…". Each column takes two columns of
// padding. A table that cannot fit is left as narrow as it goes.
func fitTable(header []string, rows [][]string, width int) ([]string, [][]string) {
	n := len(header)
	widths := make([]int, n)
	floor := make([]int, n)
	for i, h := range header {
		widths[i] = twwidth.Width(h)
		floor[i] = max(widths[i], minColumn)
	}
	for _, r := range rows {
		for i := 0; i < n && i < len(r); i++ {
			widths[i] = max(widths[i], twwidth.Width(r[i]))
		}
	}
	total := 2 * n
	for _, w := range widths {
		total += w
	}
	cut := false
	for total > width {
		widest := -1
		for i, w := range widths {
			if w > floor[i] && (widest < 0 || w > widths[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			break
		}
		widths[widest]--
		total--
		cut = true
	}
	if !cut {
		return header, rows
	}
	out := make([][]string, len(rows))
	for j, r := range rows {
		out[j] = make([]string, len(r))
		for i, c := range r {
			if i < n {
				c = truncate(c, widths[i])
			}
			out[j][i] = c
		}
	}
	hdr := make([]string, n)
	for i, h := range header {
		hdr[i] = truncate(h, widths[i])
	}
	return hdr, out
}

// truncate cuts s to at most width display columns, ending it in "…" when
// something was cut.
func truncate(s string, width int) string {
	if twwidth.Width(s) <= width {
		return s
	}
	var b strings.Builder
	used := 0
	for _, r := range s {
		rw := twwidth.Width(string(r))
		if used+rw > width-1 {
			break
		}
		b.WriteRune(r)
		used += rw
	}
	return b.String() + "…"
}

// ago renders a time for people: "3m ago".
func ago(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + short(-d)
	case d < time.Second:
		return "now"
	}
	return short(d) + " ago"
}

// durationText renders a duration without zero tails: 10m, 1h30m, 45s.
func durationText(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func short(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}
