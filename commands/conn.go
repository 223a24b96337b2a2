package commands

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/pki"
	"github.com/scirectl/scirectl/server"
)

// connOptions are the flags every operator command shares.
type connOptions struct {
	Server    string
	Token     string
	TokenFile string
	CA        string
	DataDir   string
	NoWait    bool
}

func addConnFlags(cmd *cobra.Command, o *connOptions) {
	f := cmd.Flags()
	f.StringVar(&o.Server, "server", "", "server URL (default $SCIRE_SERVER, else https://127.0.0.1:7443/RPC2)")
	f.StringVar(&o.Token, "token", "", "bearer token (default $SCIRE_TOKEN, else --token-file)")
	f.StringVar(&o.TokenFile, "token-file", "", "file holding the bearer token (default <data-dir>/admin.token when present)")
	f.StringVar(&o.CA, "ca", "", "server CA certificate to trust (default $SCIRE_CA, else <data-dir>/tls/ca.crt)")
	f.StringVar(&o.DataDir, "data-dir", "", "local server data directory used for defaults (default $SCIRE_DATA_DIR, else ./scire-data)")
	f.BoolVar(&o.NoWait, "no-wait", false, "fail at once with exit code 18 if the server is busy with a modifying operation")
}

// defaultDataDir is --data-dir, $SCIRE_DATA_DIR, or ./scire-data.
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

// client builds an API client from flags, environment and the local data
// directory, in that order.
func (o *connOptions) client() (*client.Client, error) {
	dataDir := defaultDataDir(o.DataDir)
	paths := server.Paths{Dir: dataDir}
	srv := firstNonEmpty(o.Server, os.Getenv("SCIRE_SERVER"), "https://"+server.DefaultListen+"/RPC2")
	caFile := firstNonEmpty(o.CA, os.Getenv("SCIRE_CA"))
	if caFile == "" {
		if ok, _ := pki.Exists(paths.CACert()); ok {
			caFile = paths.CACert()
		}
	}
	token := firstNonEmpty(o.Token, os.Getenv("SCIRE_TOKEN"))
	if token == "" {
		tf := o.TokenFile
		if tf == "" {
			if ok, _ := pki.Exists(paths.AdminToken()); ok {
				tf = paths.AdminToken()
			}
		}
		if tf != "" {
			b, err := os.ReadFile(tf)
			if err != nil {
				return nil, fmt.Errorf("token file: %w", err)
			}
			token = strings.TrimSpace(string(b))
		}
	}
	if token == "" {
		return nil, errors.New("no token: use --token, $SCIRE_TOKEN or --token-file (or run on the server host, where " +
			filepath.Join(dataDir, "admin.token") + " is used)")
	}
	opts := client.Options{Servers: []string{normalizeServerURL(srv)}, Token: token, NoWait: o.NoWait, UserAgent: "scirectl/" + version}
	if caFile != "" {
		pool, err := pki.CertPool(caFile)
		if err != nil {
			return nil, err
		}
		opts.RootCAs = pool
	}
	return client.New(opts)
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
