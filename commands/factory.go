package commands

import (
	"context"

	"github.com/scirectl/scirectl/client"
)

// API is what the operator commands need of the server: one call at a
// time. *client.Client implements it over XML-RPC/TLS; tests plug in a
// fake that answers in memory. Struct params are the request types of
// package api.
type API interface {
	Call(ctx context.Context, method string, reply any, args ...any) error
	Close()
}

// Factory supplies what every command needs: its streams and a way to get
// an API client for the connection settings the command was given (flags,
// then environment, then the configuration file). Command constructors take
// it, as in GitHub's CLI, so a test can build any command with its own
// streams and a fake API.
type Factory struct {
	IOStreams *IOStreams
	// APIClient connects with the settings of conn. The default builds a
	// *client.Client from them.
	APIClient func(conn *connOptions) (API, error)
}

// NewFactory returns the factory of the real program: ios, and clients
// that reach the server over TLS.
func NewFactory(ios *IOStreams) *Factory {
	return &Factory{IOStreams: ios, APIClient: tlsClient}
}

func tlsClient(conn *connOptions) (API, error) {
	c, err := conn.client()
	if err != nil {
		return nil, err
	}
	return c, nil
}

var _ API = (*client.Client)(nil)
