package commands

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at build time with -ldflags "-X …/commands.version=… -X …/commands.commit=…
// -X …/commands.buildDate=…" (the Makefile does). Without them the commit
// comes from the build info Go records from version control.
var (
	version   = "dev"
	commit    = ""
	buildDate = ""
)

// VersionInfo is what `scirectl version -o json` prints.
type VersionInfo struct {
	Version    string `json:"version"`
	Commit     string `json:"commit"`      // full revision, "" when unknown
	CommitTime string `json:"commit_time"` // RFC 3339, "" when unknown
	Modified   bool   `json:"modified"`    // built from a tree with uncommitted changes
	BuildDate  string `json:"build_date"`  // RFC 3339, "" when unknown
	GoVersion  string `json:"go_version"`
	Platform   string `json:"platform"` // GOOS/GOARCH
}

// versionInfo gathers the version from the link-time variables and the
// binary's build info.
func versionInfo() VersionInfo {
	v := VersionInfo{Version: version, Commit: commit, BuildDate: buildDate, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.GoVersion != "" {
			v.GoVersion = bi.GoVersion
		}
		if v.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version // go install …@version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.time":
				v.CommitTime = s.Value
			case "vcs.modified":
				v.Modified = v.Modified || s.Value == "true"
			}
		}
	}
	return v
}

// NewVersionCmd builds `scirectl version`.
func NewVersionCmd(ios *IOStreams) *cobra.Command {
	var out outputOptions
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version",
		Long: `Print the version of this binary, the commit it was built from (marked
"modified" when the tree had uncommitted changes), the commit's time, the
build date and the Go version and platform. "make build" stamps the version,
commit and build date (from SOURCE_DATE_EPOCH, so builds are reproducible);
otherwise they come from what Go recorded in the binary, or are "unknown".`,
		Example: "  scirectl version\n  scirectl version -o json | jq -r .commit",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			v := versionInfo()
			if out.json() {
				return printJSON(ios.Out, v)
			}
			c := unknown(v.Commit)
			if v.Modified {
				c += " (modified)"
			}
			fmt.Fprintf(ios.Out, "scirectl %s\n  commit:      %s\n  commit time: %s\n  built:       %s\n  go:          %s %s\n",
				v.Version, c, unknown(v.CommitTime), unknown(v.BuildDate), v.GoVersion, v.Platform)
			return nil
		},
	}
	addOutputFlag(cmd, &out)
	return cmd
}

func unknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
