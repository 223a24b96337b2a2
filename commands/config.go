package commands

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// The CLI's configuration file holds defaults for the operator commands;
// flags beat environment variables, which beat the file, which beats the
// built-in defaults. The server's own settings are in server.yaml (see
// "scirectl serve --help").

// cliConfigKeys are the keys the file may hold, in the order config view
// shows them.
var cliConfigKeys = []string{"server", "token_file", "ca", "data_dir", "output", "no_wait"}

// fileValue is one value from the file and the line it is on.
type fileValue struct {
	Value string
	Line  int
}

// cliConfig is the CLI's configuration file as read.
type cliConfig struct {
	Path       string // the file looked for
	PathSource string // env:SCIRE_CONFIG or default
	Found      bool
	Server     fileValue
	TokenFile  fileValue
	CA         fileValue
	DataDir    fileValue
	Output     fileValue
	NoWait     fileValue // "true" or "false"
}

// cliConfigPath is $SCIRE_CONFIG, else $XDG_CONFIG_HOME/scirectl/config.yaml,
// else ~/.config/scirectl/config.yaml.
func cliConfigPath() (path, source string) {
	if p := os.Getenv("SCIRE_CONFIG"); p != "" {
		return p, "env:SCIRE_CONFIG"
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" || !filepath.IsAbs(dir) { // the XDG spec says to ignore a relative one
		home, err := os.UserHomeDir()
		if err != nil {
			return "", "default"
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "scirectl", "config.yaml"), "default"
}

// loadCLIConfig reads the configuration file. A missing file at the
// default place is no error; one named by $SCIRE_CONFIG must exist. Every
// error names the file, the line, the key and the reason.
func loadCLIConfig() (*cliConfig, error) {
	c := &cliConfig{}
	c.Path, c.PathSource = cliConfigPath()
	if c.Path == "" {
		return c, nil
	}
	data, err := os.ReadFile(c.Path)
	if errors.Is(err, os.ErrNotExist) && c.PathSource == "default" {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	c.Found = true
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) { // an empty file is valid
			return c, nil
		}
		return nil, errors.New(configLine(c.Path, strings.TrimPrefix(err.Error(), "yaml: ")))
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return c, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: want keys and values (%s), not a %s", c.Path, root.Line, strings.Join(cliConfigKeys, ", "), kindName(root))
	}
	dir := filepath.Dir(c.Path)
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		where := fmt.Sprintf("%s:%d: %s", c.Path, k.Line, k.Value)
		if line, dup := seen[k.Value]; dup {
			return nil, fmt.Errorf("%s: given twice (first on line %d)", where, line)
		}
		seen[k.Value] = k.Line
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			return nil, fmt.Errorf("%s: want a single value, not a %s", where, kindName(v))
		}
		fv := fileValue{Value: v.Value, Line: k.Line}
		switch k.Value {
		case "server":
			if fv.Value == "" {
				return nil, fmt.Errorf("%s: empty; want a URL such as https://jobs.example:7443", where)
			}
			c.Server = fv
		case "token_file", "ca", "data_dir":
			if fv.Value == "" {
				return nil, fmt.Errorf("%s: empty; want a path", where)
			}
			fv.Value = expandPath(fv.Value, dir)
			switch k.Value {
			case "token_file":
				c.TokenFile = fv
			case "ca":
				c.CA = fv
			default:
				c.DataDir = fv
			}
		case "output":
			if !validFormat(fv.Value) {
				return nil, fmt.Errorf("%s: %q: "+wantFormat, where, fv.Value)
			}
			c.Output = fv
		case "no_wait":
			var b bool
			if err := v.Decode(&b); err != nil {
				return nil, fmt.Errorf("%s: %q is not true or false", where, fv.Value)
			}
			fv.Value = strconv.FormatBool(b)
			c.NoWait = fv
		case "token":
			return nil, fmt.Errorf("%s: a token does not belong in the configuration file; put it in a file of its own (mode 0600) and name that with token_file", where)
		default:
			return nil, fmt.Errorf("%s: unknown key (known: %s)", where, strings.Join(cliConfigKeys, ", "))
		}
	}
	return c, nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return "single value"
	}
	return "value"
}

// expandPath makes ~/x relative to the home directory and a relative path
// relative to the configuration file's directory.
func expandPath(p, dir string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	if !filepath.IsAbs(p) {
		return filepath.Join(dir, p)
	}
	return p
}

// configLine puts yaml's "line N: reason" where people and editors look
// for it: file:N: reason.
func configLine(path, msg string) string {
	var line int
	var rest string
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		if i := strings.Index(msg, ":"); i >= 0 {
			rest = strings.TrimSpace(msg[i+1:])
		}
		return fmt.Sprintf("%s:%d: %s", path, line, rest)
	}
	return path + ": " + msg
}

// NewConfigCmd builds `scirectl config`.
func NewConfigCmd(ios *IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the CLI's effective settings and where each comes from",
		Long: `The operator commands take their connection settings and defaults from, in
this order: command-line flags, environment variables (SCIRE_*), the
configuration file, and built-in defaults.

The configuration file is $SCIRE_CONFIG, else
$XDG_CONFIG_HOME/scirectl/config.yaml, else ~/.config/scirectl/config.yaml.
It is YAML with these keys, all optional:

  server: https://jobs.example:7443     # $SCIRE_SERVER, --server
  token_file: ~/.config/scirectl/token  # $SCIRE_TOKEN_FILE, --token-file
  ca: /etc/scire/ca.crt                 # $SCIRE_CA, --ca
  data_dir: /var/lib/scire              # $SCIRE_DATA_DIR, --data-dir
  output: table                         # $SCIRE_OUTPUT, -o (table, wide, json)
  no_wait: false                        # $SCIRE_NO_WAIT, --no-wait

A relative path is relative to the file's directory; ~/ is the home
directory. A bearer token itself is never read from the file (only from
--token or $SCIRE_TOKEN, or from a token file). An unknown key or a bad
value is an error that names the file, the line and the key.

The server ("scirectl serve") has its own file, server.yaml: see
"scirectl serve --help".`,
		Example: `  scirectl config view
  scirectl config view --server https://jobs.example:7443 -o json`,
	}
	cmd.AddCommand(newConfigViewCmd(ios))
	return cmd
}

func newConfigViewCmd(ios *IOStreams) *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:   "view",
		Short: "Print each effective setting, its value and its source",
		Long: `Print the settings the operator commands would use with the same flags and
environment: each value and where it came from — flag, env:NAME,
file:PATH:LINE or default. A bearer token is never printed, only whether one
is set and from where.`,
		Example: `  scirectl config view
  SCIRE_SERVER=https://jobs.example:7443 scirectl config view -o json | jq -r '.[] | select(.key=="server") | .source'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := r.out.validate(); err != nil {
				return err
			}
			s, err := r.conn.resolve()
			if err != nil {
				return err
			}
			out, err := outputSetting(&r.out)
			if err != nil {
				return err
			}
			list := []setting{s.Config, s.Server, s.Token, s.TokenFile, s.CA, s.DataDir, out, s.NoWait}
			return show(ios, &r, list, func(list []setting) error {
				rows := make([][]string, len(list))
				for i, v := range list {
					rows[i] = []string{v.Key, dash(v.Value), v.Source}
				}
				return printTable(ios.Out, &r.out, []string{"KEY", "VALUE", "SOURCE"}, rows)
			})
		},
	}
	r.addFlags(cmd)
	return cmd
}

// outputSetting tells where the output format came from.
func outputSetting(o *outputOptions) (setting, error) {
	s := setting{Key: "output", Value: o.Format, Source: "default"}
	switch {
	case o.flag != nil && o.flag.Changed:
		s.Source = "flag"
	case os.Getenv("SCIRE_OUTPUT") != "":
		s.Source = "env:SCIRE_OUTPUT"
	default:
		cfg, err := loadCLIConfig()
		if err != nil {
			return s, err
		}
		if cfg.Output.Value != "" {
			s.Source = cfg.source(cfg.Output)
		}
	}
	return s, nil
}

func (c *cliConfig) source(v fileValue) string {
	return fmt.Sprintf("file:%s:%d", c.Path, v.Line)
}
