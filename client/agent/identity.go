package agent

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/scirectl/scirectl/pki"
)

// Names of the identity files in the state directory.
const (
	keyFile  = "agent.key"
	certFile = "agent.crt"
	caFile   = "ca.crt"
	lockFile = "agent.lock"
)

// identity is what the agent shows the server and what it trusts.
type identity struct {
	cert        tls.Certificate
	fingerprint string
	roots       *x509.CertPool
}

// Fingerprint returns the SHA-256 fingerprint of the agent identity kept in
// stateDir, the value operators compare with `scirectl client list` before
// accepting the client.
func Fingerprint(stateDir string) (string, error) {
	cert, err := pki.LoadCertificate(filepath.Join(stateDir, certFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no agent identity in %s yet: it is created on the agent's first start", stateDir)
	}
	if err != nil {
		return "", fmt.Errorf("agent identity: %w", err)
	}
	return pki.Fingerprint(cert.Raw), nil
}

// makeStateDir creates the state directory, or tightens it to 0700: it holds
// the private key and the job scripts, which are nobody else's business.
func makeStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	return nil
}

// loadIdentity returns the agent's certificate and the pinned server CA,
// creating the certificate and pinning caPath on first start.
//
// The key is written before the certificate, and an identity is complete only
// when the certificate exists: a crash in between leaves a key whose
// certificate no server has ever seen, so it is safe to make a new pair then.
// A certificate without its key, on the other hand, is an identity an operator
// may have accepted; it is reported, never silently replaced.
func loadIdentity(stateDir, caPath, name string) (*identity, error) {
	kp, cp := filepath.Join(stateDir, keyFile), filepath.Join(stateDir, certFile)
	haveCert, err := pki.Exists(cp)
	if err != nil {
		return nil, err
	}
	if !haveCert {
		certPEM, keyPEM, err := pki.SelfSigned(name, []string{name})
		if err != nil {
			return nil, fmt.Errorf("create agent identity: %w", err)
		}
		if err := pki.WriteFile(kp, keyPEM, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", kp, err)
		}
		if err := pki.WriteFile(cp, certPEM, 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", cp, err)
		}
	}
	if ok, err := pki.Exists(kp); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%s exists but its key %s is missing: restore the key, or remove %s to make a new identity (which the operator must accept again)", cp, kp, cp)
	}
	cert, err := tls.LoadX509KeyPair(cp, kp)
	if err != nil {
		return nil, fmt.Errorf("load agent identity from %s: %w", stateDir, err)
	}
	roots, err := pinCA(stateDir, caPath)
	if err != nil {
		return nil, err
	}
	return &identity{cert: cert, fingerprint: pki.Fingerprint(cert.Certificate[0]), roots: roots}, nil
}

// pinCA returns the pinned server CA. The CA given on first start is copied
// into the state directory, so later starts need no --ca and a CA file that
// changes behind the agent's back (or a typo in a later --ca) cannot quietly
// redirect it to another server.
func pinCA(stateDir, caPath string) (*x509.CertPool, error) {
	pinned := filepath.Join(stateDir, caFile)
	have, err := pki.Exists(pinned)
	if err != nil {
		return nil, err
	}
	if caPath != "" {
		given, err := os.ReadFile(caPath)
		if err != nil {
			return nil, fmt.Errorf("server CA: %w", err)
		}
		givenDER := pemCerts(given)
		if len(givenDER) == 0 {
			return nil, fmt.Errorf("server CA %s: no PEM certificate in it", caPath)
		}
		if !have {
			if err := pki.WriteFile(pinned, given, 0o644); err != nil {
				return nil, fmt.Errorf("pin server CA: %w", err)
			}
		} else {
			old, err := os.ReadFile(pinned)
			if err != nil {
				return nil, fmt.Errorf("pinned server CA: %w", err)
			}
			if !slices.EqualFunc(pemCerts(old), givenDER, bytes.Equal) {
				return nil, fmt.Errorf("server CA %s differs from the CA pinned in %s; "+
					"if the server's CA really changed, check the new one, then remove %s and start again with --ca %s",
					caPath, pinned, pinned, caPath)
			}
		}
	} else if !have {
		return nil, fmt.Errorf("no server CA pinned in %s: the first start needs --ca FILE (the server's tls/ca.crt)", stateDir)
	}
	return pki.CertPool(pinned)
}

// pemCerts returns the DER of every certificate in a PEM file, so two files
// that differ only in comments or line endings compare equal.
func pemCerts(data []byte) [][]byte {
	var out [][]byte
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			return out
		}
		if blk.Type == "CERTIFICATE" {
			out = append(out, blk.Bytes)
		}
	}
}
