// Package serverconfig reads server.yaml, the daemon's configuration file:
// its keys, their types (durations, byte sizes, counts, networks, gate
// classes) and errors that name the file and line. `scirectl serve` reads
// it; command-line flags win over it.
package serverconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/gate"
)

// MaxWebhookTimeout bounds webhooks: timeout: a delivery holds its
// webhook's lease for a few times as long.
const MaxWebhookTimeout = time.Minute

// ConfigFileName is the server configuration file looked for in the data
// directory when serve is given no --config.
const ConfigFileName = "server.yaml"

// FileConfig is the server configuration file. Every key is optional;
// command-line flags win over it. Example:
//
//	listen: 0.0.0.0:7443
//	poll_interval: 30s
//	lost_grace: 2m        # added to a job's timeout before a silent run is lost
//	rescue_interval: 5s   # between sweeps for expired leases, lost runs, expiry
//	gate:
//	  max_wait: 10s
//	  classes:
//	    job.submit: non-modifier   # let submits run alongside reads
//	limits:
//	  max_threads: 128
//	  max_body: 32MiB
//	push_networks: [10.0.0.0/8, 127.0.0.1/32]
//	webhooks:
//	  allow_http: true    # http:// webhooks to any host, not only loopback
//	  timeout: 5s         # one POST, at most 1m (default 10s)
//	retain: 90d           # final jobs, with their runs and output; off: for ever
//	retain_audit: 400d    # the audit trail; off: for ever
type FileConfig struct {
	Listen       string   `yaml:"listen"`
	DB           string   `yaml:"db"`
	Lease        Duration `yaml:"lease"`
	PollInterval Duration `yaml:"poll_interval"`
	LostGrace    Duration `yaml:"lost_grace"`
	Rescue       Duration `yaml:"rescue_interval"`
	LogFormat    string   `yaml:"log_format"`
	LogLevel     string   `yaml:"log_level"`
	Gate         struct {
		MaxWait Duration              `yaml:"max_wait"`
		Classes map[string]ClassValue `yaml:"classes"`
	} `yaml:"gate"`
	Limits FileLimits `yaml:"limits"` // hostile-input limits, see limits.go and docs/limits.md
	// PushNetworks, when set, are the only networks agent.pollNow is
	// pushed to (package push, docs/protocol.md): CIDR prefixes, or
	// single addresses.
	PushNetworks Networks `yaml:"push_networks"`
	// Webhooks are the rules of webhook deliveries (docs/events.md).
	Webhooks FileWebhooks `yaml:"webhooks"`
	// Retain and RetainAudit are the retention periods (docs/maintenance.md,
	// "Retention"); nil when the file does not set them.
	Retain      *Retention `yaml:"retain"`
	RetainAudit *Retention `yaml:"retain_audit"`
}

// FileWebhooks is the webhooks: section of the server configuration file.
type FileWebhooks struct {
	// AllowHTTP lets a webhook's URL be http:// to any host; without it
	// http:// is only for loopback addresses, and https:// is the rule.
	AllowHTTP bool `yaml:"allow_http"`
	// Timeout bounds one POST (default 10s, at most 1m).
	Timeout Duration `yaml:"timeout"`
}

// Retention is a retention period: a duration whose units may include d,
// days ("90d", "36h", "1d12h"), or off ("off", "never", "0": kept for
// ever), which is 0.
type Retention time.Duration

// Set implements pflag.Value.
func (r *Retention) Set(v string) error {
	d, err := api.ParseRetention(v)
	if err != nil {
		return err
	}
	*r = Retention(d)
	return nil
}

// String writes the period as Set reads it: "90d", "off".
func (r *Retention) String() string {
	if *r <= 0 {
		return "off"
	}
	return api.FormatAge(time.Duration(*r))
}

// Type implements pflag.Value.
func (r *Retention) Type() string { return "duration" }

// UnmarshalYAML reads a Retention, reporting the line of a bad one. YAML
// reads a bare off as the boolean false; it means off here too.
func (r *Retention) UnmarshalYAML(n *yaml.Node) error {
	v := n.Value
	if n.Tag == "!!bool" && strings.EqualFold(v, "false") {
		v = "off"
	}
	if err := r.Set(v); err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	return nil
}

// Networks is a list of network prefixes written as CIDR (10.0.0.0/8,
// fd00::/8) or single addresses (127.0.0.1) in the file.
type Networks []netip.Prefix

// UnmarshalYAML reads a sequence of prefixes, reporting the line of a bad one.
func (ns *Networks) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("line %d: push_networks: want a list such as [10.0.0.0/8, 127.0.0.1/32]", n.Line)
	}
	out := make(Networks, 0, len(n.Content))
	for _, item := range n.Content {
		p, err := ParseNetwork(item.Value)
		if err != nil {
			return fmt.Errorf("line %d: push_networks: %v", item.Line, err)
		}
		out = append(out, p)
	}
	*ns = out
	return nil
}

// ParseNetwork reads a CIDR prefix or a single address (a /32 or /128).
// A prefix with host bits set (10.1.2.3/8) is refused: it is most likely
// a typo for another network.
func ParseNetwork(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not a network such as 10.0.0.0/8 or an address", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a network such as 10.0.0.0/8 or an address", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has bits set beyond its /%d: did you mean %s?", s, p.Bits(), p.Masked())
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q: write an IPv4 network as a.b.c.d/n", s)
	}
	return p, nil
}

// Duration is a time.Duration written as "30s", "5m" in the file.
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration such as 30s or 5m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// ClassValue is a gate class written as "modifier" or "non-modifier".
type ClassValue gate.Class

// UnmarshalYAML reads a class name, reporting the line of a bad one.
func (c *ClassValue) UnmarshalYAML(n *yaml.Node) error {
	v, err := gate.ParseClass(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*c = ClassValue(v)
	return nil
}

// Classes returns the gate class overrides for Config.Classes.
func (c FileConfig) Classes() map[string]gate.Class {
	out := make(map[string]gate.Class, len(c.Gate.Classes))
	for k, v := range c.Gate.Classes {
		out[k] = gate.Class(v)
	}
	return out
}

// yamlLine finds "line N: " in yaml's messages, to put it where people and
// editors look for it: file:line.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// LoadConfigFile reads and checks a server configuration file. Errors name
// the file, the line when known, the key and the reason; unknown keys are
// errors, not silently ignored.
func LoadConfigFile(path string) (FileConfig, error) {
	var c FileConfig
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("server config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // an empty file is valid
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msg := ""
			for i, e := range te.Errors {
				if i > 0 {
					msg += "; "
				}
				msg += configLine(path, e)
			}
			return c, errors.New(msg)
		}
		return c, errors.New(configLine(path, err.Error()))
	}
	switch c.LogFormat {
	case "", "text", "json":
	default:
		return c, fmt.Errorf("%s: log_format: %q is neither text nor json", path, c.LogFormat)
	}
	if t := time.Duration(c.Webhooks.Timeout); t > MaxWebhookTimeout {
		return c, fmt.Errorf("%s: webhooks: timeout: %v is longer than %v", path, t, MaxWebhookTimeout)
	}
	return c, nil
}

func configLine(path, msg string) string {
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return path + ":" + m[1] + ": " + m[2]
	}
	return path + ": " + msg
}

// FileLimits is the limits: section of the server configuration file; an
// absent or zero key keeps the default. Example:
//
//	limits:
//	  max_threads: 128
//	  max_body: 32MiB
//	  write_timeout: 2m
type FileLimits struct {
	MaxBody           Size     `yaml:"max_body"`
	MaxDepth          Count    `yaml:"max_depth"`
	MaxValues         Count    `yaml:"max_values"`
	MaxString         Size     `yaml:"max_string"`
	MaxOutput         Size     `yaml:"max_output"`
	MaxHeader         Size     `yaml:"max_header"`
	MaxThreads        Count    `yaml:"max_threads"`
	MaxThreadsWait    Duration `yaml:"max_threads_wait"`
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	ReadTimeout       Duration `yaml:"read_timeout"`
	WriteTimeout      Duration `yaml:"write_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
}

// Count is a non-negative whole number in the configuration file.
type Count int

// UnmarshalYAML refuses negative and non-integer counts with the line.
func (c *Count) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a whole number ≥ 0", n.Line, n.Value)
	}
	*c = Count(v)
	return nil
}

// Size is a byte count written as 1048576, 512KiB, 16MiB or 1GiB (also
// K, M, G, KB, MB, GB, case-insensitive; every multiple is binary: 1M =
// 1MiB = 1048576 bytes). It is a pflag.Value too, for the serve flags.
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30},
	{"b", 1},
}

// ParseSize reads a Size; it must be > 0 and fit in 63 bits.
func ParseSize(s string) (Size, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size such as 65536, 512KiB or 16MiB", s)
	}
	return Size(n * mult), nil
}

// String writes the size in the largest binary unit that divides it.
func (s Size) String() string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s > 0 && int64(s)%u.mult == 0 {
			return strconv.FormatInt(int64(s)/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// Set implements pflag.Value.
func (s *Size) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = n
	return nil
}

// Type implements pflag.Value.
func (s *Size) Type() string { return "size" }

// UnmarshalYAML reads a Size, reporting the line of a bad one.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*s = v
	return nil
}
