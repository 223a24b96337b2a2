package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/scirectl/scirectl/gate"
)

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
	return c, nil
}

func configLine(path, msg string) string {
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return path + ":" + m[1] + ": " + m[2]
	}
	return path + ": " + msg
}
