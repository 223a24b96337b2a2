package commands

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/datadir"
	"github.com/scirectl/scirectl/pki"
)

// connOptions are the flags every operator command shares.
type connOptions struct {
	Server    string
	Token     string
	TokenFile string
	CA        string
	DataDir   string
	NoWait    bool
	flags     *pflag.FlagSet // to tell a flag given from its default
}

func addConnFlags(cmd *cobra.Command, o *connOptions) {
	f := cmd.Flags()
	f.StringVar(&o.Server, "server", "", "server URL (default $SCIRE_SERVER, else the config file's server:, else https://127.0.0.1:7443/RPC2)")
	f.StringVar(&o.Token, "token", "", "bearer token (default $SCIRE_TOKEN, else a token file)")
	f.StringVar(&o.TokenFile, "token-file", "", "file holding the bearer token (default $SCIRE_TOKEN_FILE, else the config file's token_file:, else <data-dir>/admin.token when present)")
	f.StringVar(&o.CA, "ca", "", "server CA certificate to trust (default $SCIRE_CA, else the config file's ca:, else <data-dir>/tls/ca.crt when present)")
	f.StringVar(&o.DataDir, "data-dir", "", "local server data directory used for defaults (default $SCIRE_DATA_DIR, else the config file's data_dir:, else ./scire-data)")
	f.BoolVar(&o.NoWait, "no-wait", false, "fail at once with exit code 18 if the server is busy with a modifying operation (default $SCIRE_NO_WAIT, else the config file's no_wait:)")
	o.flags = f
}

// defaultDataDir is --data-dir, $SCIRE_DATA_DIR, or ./scire-data: the
// server's own data directory, for serve and recover (the configuration
// file is the operator CLI's).
func defaultDataDir(flag string) string {
	if flag != "" {
		return flag
	}
	if d := os.Getenv("SCIRE_DATA_DIR"); d != "" {
		return d
	}
	return "scire-data"
}

// normalizeServerURL accepts "host:port", "https://host:port" or a full
// endpoint URL and returns the endpoint.
func normalizeServerURL(s string) string {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	rest := s[strings.Index(s, "://")+3:]
	if !strings.Contains(rest, "/") {
		s += "/RPC2"
	}
	return s
}

// setting is one effective value and where it came from: flag, env:NAME,
// file:PATH:LINE or default.
type setting struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

// connSettings are the effective connection settings.
type connSettings struct {
	Config, Server, Token, TokenFile, CA, DataDir, NoWait setting
	token                                                 string // the secret, when given directly
}

// given reports whether flag name was set on the command line, to a
// value that is not empty.
func (o *connOptions) given(name, value string) bool {
	if value == "" || name == "" {
		return false
	}
	return o.flags == nil || o.flags.Changed(name)
}

// resolve works out every connection setting once, for all commands:
// flags, then environment, then the configuration file, then defaults.
func (o *connOptions) resolve() (*connSettings, error) {
	cfg, err := loadCLIConfig()
	if err != nil {
		return nil, err
	}
	s := &connSettings{}
	s.Config = setting{Key: "config", Value: cfg.Path, Source: cfg.PathSource}
	if !cfg.Found {
		s.Config.Value += " (not found)"
	}
	pick := func(key, flagName, flagVal, env string, fv fileValue, def string) setting {
		switch {
		case o.given(flagName, flagVal):
			return setting{key, flagVal, "flag"}
		case os.Getenv(env) != "":
			return setting{key, os.Getenv(env), "env:" + env}
		case fv.Value != "":
			return setting{key, fv.Value, cfg.source(fv)}
		}
		return setting{key, def, "default"}
	}
	s.DataDir = pick("data_dir", "data-dir", o.DataDir, "SCIRE_DATA_DIR", cfg.DataDir, "scire-data")
	paths := datadir.Paths{Dir: s.DataDir.Value}
	s.Server = pick("server", "server", o.Server, "SCIRE_SERVER", cfg.Server, "https://"+api.DefaultListen+"/RPC2")
	def := ""
	if ok, _ := pki.Exists(paths.CACert()); ok {
		def = paths.CACert()
	}
	s.CA = pick("ca", "ca", o.CA, "SCIRE_CA", cfg.CA, def)

	s.NoWait = pick("no_wait", "", "", "SCIRE_NO_WAIT", cfg.NoWait, "false")
	if o.NoWait || o.flags != nil && o.flags.Changed("no-wait") {
		s.NoWait = setting{"no_wait", strconv.FormatBool(o.NoWait), "flag"}
	} else if s.NoWait.Source == "env:SCIRE_NO_WAIT" {
		b, err := strconv.ParseBool(s.NoWait.Value)
		if err != nil {
			return nil, usageError(fmt.Sprintf("$SCIRE_NO_WAIT %q: want true or false", s.NoWait.Value))
		}
		s.NoWait.Value = strconv.FormatBool(b)
	}

	// The credential comes from the highest layer that gives one: a token
	// or a token file on the command line, then in the environment, then a
	// token file in the configuration file, then the data directory's
	// admin.token.
	s.Token = setting{Key: "token", Source: "-"}
	s.TokenFile = setting{Key: "token_file", Source: "-"}
	switch {
	case o.given("token", o.Token):
		s.token, s.Token = o.Token, setting{"token", "set", "flag"}
	case o.given("token-file", o.TokenFile):
		s.TokenFile = setting{"token_file", o.TokenFile, "flag"}
	case os.Getenv("SCIRE_TOKEN") != "":
		s.token, s.Token = os.Getenv("SCIRE_TOKEN"), setting{"token", "set", "env:SCIRE_TOKEN"}
	case os.Getenv("SCIRE_TOKEN_FILE") != "":
		s.TokenFile = setting{"token_file", os.Getenv("SCIRE_TOKEN_FILE"), "env:SCIRE_TOKEN_FILE"}
	case cfg.TokenFile.Value != "":
		s.TokenFile = setting{"token_file", cfg.TokenFile.Value, cfg.source(cfg.TokenFile)}
	default:
		if ok, _ := pki.Exists(paths.AdminToken()); ok {
			s.TokenFile = setting{"token_file", paths.AdminToken(), "default"}
		}
	}
	if s.token == "" && s.TokenFile.Value != "" {
		s.Token = setting{"token", "from token_file", s.TokenFile.Source}
	}
	return s, nil
}

// dataDir is the effective data directory; a broken configuration file
// is reported by the command's other steps, so here it only falls back.
func (o *connOptions) dataDir() string {
	if s, err := o.resolve(); err == nil {
		return s.DataDir.Value
	}
	return defaultDataDir(o.DataDir)
}

// client builds an API client from the effective settings.
func (o *connOptions) client() (*client.Client, error) {
	s, err := o.resolve()
	if err != nil {
		return nil, err
	}
	token := s.token
	if token == "" && s.TokenFile.Value != "" {
		b, err := os.ReadFile(s.TokenFile.Value)
		if err != nil {
			return nil, fmt.Errorf("token file (%s): %w", s.TokenFile.Source, err)
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return nil, fmt.Errorf("token file %s (%s) is empty", s.TokenFile.Value, s.TokenFile.Source)
		}
	}
	if token == "" {
		return nil, errors.New("no token: use --token, $SCIRE_TOKEN, --token-file, $SCIRE_TOKEN_FILE or token_file: in " +
			s.Config.Value + " (or run on the server host, where " + filepath.Join(s.DataDir.Value, "admin.token") + " is used)")
	}
	opts := client.Options{Servers: []string{normalizeServerURL(s.Server.Value)}, Token: token, NoWait: s.NoWait.Value == "true",
		UserAgent: "scirectl/" + version}
	if s.CA.Value != "" {
		pool, err := pki.CertPool(s.CA.Value)
		if err != nil {
			return nil, fmt.Errorf("ca (%s): %w", s.CA.Source, err)
		}
		opts.RootCAs = pool
	}
	return client.New(opts)
}
