package commands

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X …/commands.version=…".
var version = "dev"

// NewVersionCmd builds `scirectl version`.
func NewVersionCmd(ios *IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version",
		Example: "  scirectl version",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			goVer, commit := "", ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				goVer = bi.GoVersion
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						commit = s.Value
					}
				}
			}
			fmt.Fprintf(ios.Out, "scirectl %s", version)
			if commit != "" {
				fmt.Fprintf(ios.Out, " (commit %.12s)", commit)
			}
			fmt.Fprintf(ios.Out, " %s\n", goVer)
			return nil
		},
	}
}
