package api

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// PollNowPath is the one path a daemon-mode agent serves agent.pollNow on
// (client/agent/daemon.go), and so the path of every callback_url.
const PollNowPath = "/RPC2"

// CheckCallbackURL checks a daemon-mode agent's callback_url, the address
// the server pushes agent.pollNow to (docs/protocol.md): https, a host and
// an explicit port, no user name or password, the path PollNowPath and
// nothing after it (no query, no fragment). The error says which rule
// failed; it does not repeat the URL.
func CheckCallbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("not a URL: %v", err)
	}
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("scheme %q: must be https", u.Scheme)
	case u.Opaque != "" || u.Host == "":
		return errors.New("no host: want https://HOST:PORT" + PollNowPath)
	case u.User != nil:
		return errors.New("must not carry a user name or password")
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		return errors.New("no port: the port must be explicit (https://HOST:PORT" + PollNowPath + ")")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want 1..65535", port)
	}
	if err := checkCallbackHost(host); err != nil {
		return err
	}
	switch {
	case u.RawQuery != "" || u.ForceQuery || strings.Contains(raw, "?"):
		return errors.New("must not have a query")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return errors.New("must not have a fragment")
	case u.EscapedPath() != PollNowPath:
		return fmt.Errorf("path %q: must be %s, the one path an agent serves agent.pollNow on", u.EscapedPath(), PollNowPath)
	}
	return nil
}

// checkCallbackHost accepts an IP address a push can reach (not 0.0.0.0,
// ::, or a multicast address) or a DNS name.
func checkCallbackHost(host string) error {
	if host == "" {
		return errors.New("no host: want https://HOST:PORT" + PollNowPath)
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() || ip.IsMulticast() {
			return fmt.Errorf("host %s: not an address a push can be sent to", host)
		}
		return nil
	}
	if strings.Contains(host, "%") { // an IPv6 zone: fe80::1%eth0
		if ip := net.ParseIP(host[:strings.IndexByte(host, '%')]); ip != nil && ip.IsLinkLocalUnicast() {
			return nil
		}
		return fmt.Errorf("host %q: not a host name or IP address", host)
	}
	if len(host) > 253 {
		return errors.New("host: longer than 253 bytes")
	}
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host %q: not a host name or IP address", host)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("host %q: not a host name or IP address", host)
			}
		}
	}
	return nil
}
