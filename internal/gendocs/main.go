// Command gendocs writes scirectl's man pages and shell completions from
// the command tree, so they can never drift from the flags. Output is
// reproducible: dates come from SOURCE_DATE_EPOCH.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"

	"github.com/scirectl/scirectl/commands"
)

func main() {
	manDir := flag.String("man", "man", "directory for man pages")
	compDir := flag.String("completions", "completions", "directory for shell completions")
	flag.Parse()
	if err := run(*manDir, *compDir); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

// escapeMarkdown backslash-escapes '<' and '*' in the texts the man pages
// render from Markdown (descriptions and flag usages), where "<state-dir>"
// would otherwise read as an HTML tag and vanish, and the stars of a cron
// expression ('0 3 * * *', '*/15 * * * *') as emphasis. Only the man pages
// see it: the tree is built for this run alone.
func escapeMarkdown(c *cobra.Command) {
	esc := strings.NewReplacer("<", `\<`, "*", `\*`).Replace
	c.Short, c.Long = esc(c.Short), esc(c.Long)
	for _, fs := range []*pflag.FlagSet{c.LocalFlags(), c.PersistentFlags()} {
		fs.VisitAll(func(f *pflag.Flag) { f.Usage = esc(f.Usage) })
	}
	for _, sub := range c.Commands() {
		escapeMarkdown(sub)
	}
}

func run(manDir, compDir string) error {
	root := commands.NewRoot(commands.System())
	root.DisableAutoGenTag = true
	date := time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		date = time.Unix(sec, 0).UTC()
	}
	for _, d := range []string{manDir, compDir} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	hdr := &doc.GenManHeader{Title: "SCIRECTL", Section: "1", Source: "scirectl", Manual: "scirectl manual", Date: &date}
	escapeMarkdown(root)
	if err := doc.GenManTree(root, hdr, manDir); err != nil {
		return err
	}
	gens := map[string]func(*cobra.Command, string) error{
		"scirectl.bash": func(c *cobra.Command, p string) error { return c.GenBashCompletionFileV2(p, true) },
		"_scirectl":     func(c *cobra.Command, p string) error { return c.GenZshCompletionFile(p) },
		"scirectl.fish": func(c *cobra.Command, p string) error { return c.GenFishCompletionFile(p, true) },
		"scirectl.ps1":  func(c *cobra.Command, p string) error { return c.GenPowerShellCompletionFileWithDesc(p) },
	}
	for name, gen := range gens {
		if err := gen(root, filepath.Join(compDir, name)); err != nil {
			return err
		}
	}
	return nil
}
