package datadir

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/scirectl/scirectl/acl"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/pki"
	"github.com/scirectl/scirectl/service"
)

// Paths names the files of a data directory (docs/protocol.md, "Files").
type Paths struct{ Dir string }

func (p Paths) DB() string         { return filepath.Join(p.Dir, "scire.db") }
func (p Paths) CACert() string     { return filepath.Join(p.Dir, "tls", "ca.crt") }
func (p Paths) CAKey() string      { return filepath.Join(p.Dir, "tls", "ca.key") }
func (p Paths) ServerCert() string { return filepath.Join(p.Dir, "tls", "server.crt") }
func (p Paths) ServerKey() string  { return filepath.Join(p.Dir, "tls", "server.key") }
func (p Paths) PushCert() string   { return filepath.Join(p.Dir, "tls", "push.crt") }
func (p Paths) PushKey() string    { return filepath.Join(p.Dir, "tls", "push.key") }
func (p Paths) AdminToken() string { return filepath.Join(p.Dir, "admin.token") }
func (p Paths) Blacklist() string  { return filepath.Join(p.Dir, "blacklist") }

// CheckDataDir keeps the data directory private to the user running the
// server: it holds the CA and server keys, the admin token and, with
// SQLite, the database (token hashes, scripts, output). A directory its
// group or others may enter, list or write is
//
//   - made 0700 while it holds none of that yet (tls/, admin.token,
//     scire.db): the first start, in a directory made by hand, by a
//     package or by os.MkdirTemp's callers with the usual umask, which is
//     serve's to set up; tightened says so, for the log;
//   - refused once it does, with the path, the mode and the chmod that
//     fixes it, rather than tightened behind the back of whoever opened it.
func CheckDataDir(p Paths) (tightened bool, err error) {
	if runtime.GOOS == "windows" {
		return false, nil // no Unix mode bits to judge
	}
	fi, err := os.Stat(p.Dir)
	if err != nil {
		return false, fmt.Errorf("data dir: %w", err)
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("data dir %s is not a directory", p.Dir)
	}
	m := fi.Mode().Perm()
	if m&0o077 == 0 {
		return false, nil
	}
	for _, f := range []string{filepath.Dir(p.CAKey()), p.AdminToken(), p.DB()} {
		if _, err := os.Lstat(f); !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("data dir %s is mode %04o: its group or others could reach the keys, the admin token and the database in it; "+
				"refusing to start. Make it private to the user running serve: chmod 700 %s", p.Dir, m, shellQuote(p.Dir))
		}
	}
	if err := os.Chmod(p.Dir, 0o700); err != nil {
		return false, fmt.Errorf("data dir %s is mode %04o and could not be made 0700: %w", p.Dir, m, err)
	}
	return true, nil
}

// shellQuote quotes a path for a command to copy and paste, only when it
// needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// EnsureTLS creates the CA and the server certificate on first start. The
// server certificate names the listen address, localhost and the host name;
// it is re-issued (by the same CA) when the listen address is not covered,
// so agents that pinned the CA keep working.
func EnsureTLS(p Paths, listen string) error {
	if err := os.MkdirAll(filepath.Join(p.Dir, "tls"), 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	var ca *pki.CA
	ok, err := pki.Exists(p.CACert(), p.CAKey())
	if err != nil {
		return err
	}
	if ok {
		if ca, err = pki.LoadCA(p.CACert(), p.CAKey()); err != nil {
			return err
		}
	} else {
		host, _ := os.Hostname()
		if ca, err = pki.NewCA("scirectl CA " + host); err != nil {
			return fmt.Errorf("create CA: %w", err)
		}
		if err := ca.Save(p.CACert(), p.CAKey()); err != nil {
			return fmt.Errorf("save CA: %w", err)
		}
	}
	if err := ensurePushCert(p, ca); err != nil {
		return err
	}
	hosts := serverHosts(listen)
	if ok, _ := pki.Exists(p.ServerCert(), p.ServerKey()); ok && certCovers(p.ServerCert(), hosts) {
		return nil
	}
	certPEM, keyPEM, err := ca.Issue("scirectl server", hosts, 5*365*24*time.Hour)
	if err != nil {
		return fmt.Errorf("issue server certificate: %w", err)
	}
	if err := pki.WriteFile(p.ServerKey(), keyPEM, 0o600); err != nil {
		return err
	}
	return pki.WriteFile(p.ServerCert(), certPEM, 0o644)
}

// ensurePushCert issues tls/push.crt and tls/push.key (0600): the client
// certificate the daemon presents to daemon-mode agents when it pushes
// agent.pollNow (push.go). Agents accept it because it chains to the CA they
// pinned. It is re-issued when missing, not signed by ca, or near its end.
func ensurePushCert(p Paths, ca *pki.CA) error {
	if pair, err := tls.LoadX509KeyPair(p.PushCert(), p.PushKey()); err == nil && pair.Leaf != nil &&
		pair.Leaf.CheckSignatureFrom(ca.Cert) == nil && time.Now().Add(30*24*time.Hour).Before(pair.Leaf.NotAfter) {
		return nil
	}
	certPEM, keyPEM, err := ca.Issue("scirectl push", nil, 5*365*24*time.Hour)
	if err != nil {
		return fmt.Errorf("issue push certificate: %w", err)
	}
	if err := pki.WriteFile(p.PushKey(), keyPEM, 0o600); err != nil {
		return err
	}
	return pki.WriteFile(p.PushCert(), certPEM, 0o644)
}

func serverHosts(listen string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
		hosts = append(hosts, h)
	}
	if hn, err := os.Hostname(); err == nil && hn != "" {
		hosts = append(hosts, hn)
	}
	return hosts
}

func certCovers(path string, hosts []string) bool {
	pool, err := pki.LoadCertificate(path)
	if err != nil {
		return false
	}
	for _, h := range hosts {
		if pool.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// NewToken makes a token for a user and stores its hash (the format is
// the service's: service.MintToken).
func NewToken(ctx context.Context, s db.Store, userID int64, name string) (string, error) {
	tok, _, err := service.MintToken(ctx, s, userID, name)
	return tok, err
}

// ErrBadToken never says which part was wrong.
var ErrBadToken = service.ErrBadToken

// VerifyToken returns the user a token belongs to (service.VerifyToken).
func VerifyToken(ctx context.Context, s db.Store, token string) (db.User, error) {
	return service.VerifyToken(ctx, s, token)
}

// EnsureAdmin makes sure the built-in admin user exists and admin.token
// holds a token that works against this database; a missing or stale file
// (e.g. after the database was replaced) gets a fresh token, written 0600.
func EnsureAdmin(ctx context.Context, s db.Store, p Paths) error {
	u, err := s.EnsureUser(ctx, acl.Admin)
	if err != nil {
		return err
	}
	if b, err := os.ReadFile(p.AdminToken()); err == nil {
		if owner, err := VerifyToken(ctx, s, string(b)); err == nil && owner.Name == acl.Admin {
			return os.Chmod(p.AdminToken(), 0o600)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", p.AdminToken(), err)
	}
	tok, err := NewToken(ctx, s, u.ID, "admin.token")
	if err != nil {
		return fmt.Errorf("create admin token: %w", err)
	}
	if err := pki.WriteFile(p.AdminToken(), []byte(tok+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", p.AdminToken(), err)
	}
	return nil
}
