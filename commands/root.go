// Package commands is scirectl's command tree. As in GitHub's CLI, each
// command is built by a constructor that takes a [Factory] (the I/O streams
// and a way to get an API client) and, for the operator verbs, a runF: a
// test passes one to see the options the flags and arguments made, or nil
// to run the command, against a fake API client, in memory.
package commands

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// IOStreams are where a command reads and writes.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// System returns the process's streams.
func System() *IOStreams { return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr} }

// NewRoot builds the whole command tree with the real factory.
func NewRoot(ios *IOStreams) *cobra.Command { return NewRootCmd(NewFactory(ios)) }

// NewRootCmd builds the whole command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	ios := f.IOStreams
	root := &cobra.Command{
		Use:   "scirectl",
		Short: "Job server for fleets of managed machines",
		Long: `scirectl runs jobs (scripts) on managed machines.

The server ("scirectl serve") keeps jobs in a database and serves XML-RPC over
TLS. Agents on the machines ("scirectl client poll") ask for work, acknowledge
it, run it and report back. Operators submit and follow jobs with the other
commands, which talk to the server over the same API.

Settings come from the command-line flags, then the environment (SCIRE_SERVER,
SCIRE_TOKEN, SCIRE_TOKEN_FILE, SCIRE_CA, SCIRE_DATA_DIR, SCIRE_OUTPUT,
SCIRE_NO_WAIT), then the configuration file ($SCIRE_CONFIG, else
$XDG_CONFIG_HOME/scirectl/config.yaml, else ~/.config/scirectl/config.yaml),
then the defaults; "scirectl config view" shows each value and its source.

Output is a table for people (-o wide adds columns; --no-headers drops the
header line; on a terminal long cells are cut to fit its width) or JSON for
scripts (-o json; field names are stable, see docs/cli-output.md). Commands
that list things take -q to print only ids, as do "job submit" and
"job rerun". Times are relative in tables ("3m ago") and RFC 3339 in JSON.

` + exitCodesHelp,
		Example: `  # start a server on the embedded defaults (./scire-data, 127.0.0.1:7443)
  scirectl serve

  # on the same host, with no flags: list clients and accept one
  scirectl client list
  scirectl client accept web1

  # run a command on a client and look at the result
  scirectl job submit --target web1 -c 'uptime'
  scirectl job status 1`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(ios.In)
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	root.AddCommand(
		NewServeCmd(ios),
		NewRecoverCmd(ios),
		NewJobCmd(f),
		NewScheduleCmd(f),
		NewWebhookCmd(f),
		NewClientCmd(f),
		NewGroupCmd(f),
		NewUserCmd(f),
		NewACLCmd(f),
		NewAuditCmd(f),
		NewEventsCmd(f, nil),
		NewOpsCmd(f),
		NewBlacklistCmd(f),
		NewServerCmd(f),
		NewDBCmd(f),
		NewBenchCmd(ios),
		NewVersionCmd(ios),
		NewConfigCmd(ios),
	)
	return root
}

// Execute runs the command line and returns the process exit code.
func Execute(ios *IOStreams, args []string) int { return ExecuteWith(NewFactory(ios), args) }

// ExecuteWith runs the command line with f and returns the exit code.
func ExecuteWith(f *Factory, args []string) int {
	ios := f.IOStreams
	root := NewRootCmd(f)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) || ee.msg != "" {
		fmt.Fprintln(ios.ErrOut, "scirectl:", err)
	}
	return ExitCode(err)
}
