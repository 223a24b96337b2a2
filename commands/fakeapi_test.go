package commands

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	kolo "github.com/kolo/xmlrpc"

	"github.com/scirectl/scirectl/xmlrpc"
)

// fakeAPI is an API that answers in memory with canned replies, as
// fakeServer does over TLS: each call is encoded as client.Client encodes
// it and decoded as the server decodes it, and the reply goes through the
// XML-RPC encoding back, so the params a test sees and the values a
// command gets are those of the wire.
type fakeAPI struct {
	mu      sync.Mutex
	replies map[string]func(xmlrpc.Params) any // a *xmlrpc.Fault answers with a fault
	calls   []fakeCall
}

// fakeCall is one call the fake received.
type fakeCall struct {
	Method string
	Params xmlrpc.Params
}

func newFakeAPI(replies map[string]func(xmlrpc.Params) any) *fakeAPI {
	return &fakeAPI{replies: replies}
}

func (f *fakeAPI) Call(ctx context.Context, method string, reply any, args ...any) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	body, err := kolo.EncodeMethodCall(method, args...)
	if err != nil {
		return fmt.Errorf("%s: encode call: %w", method, err)
	}
	m, params, err := xmlrpc.DecodeCall(bytes.NewReader(body), xmlrpc.Limits{})
	if err != nil {
		return fmt.Errorf("%s: the server could not read the call: %w", method, err)
	}
	f.mu.Lock()
	f.calls = append(f.calls, fakeCall{m, params})
	h, ok := f.replies[m]
	f.mu.Unlock()
	var buf bytes.Buffer
	if !ok {
		xmlrpc.EncodeFault(&buf, &xmlrpc.Fault{Code: 404, Message: "no method " + m})
	} else if v := h(params); v != nil {
		if fault, ok := v.(*xmlrpc.Fault); ok {
			xmlrpc.EncodeFault(&buf, fault)
		} else if err := xmlrpc.EncodeResponse(&buf, v); err != nil {
			return fmt.Errorf("%s: encode reply: %w", m, err)
		}
	}
	err = xmlrpc.DecodeResponse(buf.Bytes(), reply)
	if fault, ok := xmlrpc.AsFault(err); ok {
		return fault
	}
	if err != nil {
		return fmt.Errorf("%s: decode reply: %w", method, err)
	}
	return nil
}

func (f *fakeAPI) Close() {}

// methods lists the methods called, in order.
func (f *fakeAPI) methods() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ms []string
	for _, c := range f.calls {
		ms = append(ms, c.Method)
	}
	return ms
}

// last is the last call received; it fails the test when there was none.
func (f *fakeAPI) last(t *testing.T) fakeCall {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		t.Fatal("no call reached the API")
	}
	return f.calls[len(f.calls)-1]
}

// factory is a Factory whose API client is f, with the given streams.
func (f *fakeAPI) factory(ios *IOStreams) *Factory {
	return &Factory{IOStreams: ios, APIClient: func(*connOptions) (API, error) { return f, nil }}
}

// runFake runs a command line against api, in memory, and returns its
// standard output, standard error and exit code.
func runFake(t *testing.T, api *fakeAPI, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := ExecuteWith(api.factory(&IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}), args)
	return out.String(), errOut.String(), code
}

// wire is what the server decodes from args sent as a call's params.
func wire(t *testing.T, args ...any) xmlrpc.Params {
	t.Helper()
	body, err := kolo.EncodeMethodCall("m", args...)
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := xmlrpc.DecodeCall(bytes.NewReader(body), xmlrpc.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return params
}

// sameParams reports whether got are the params want would be on the wire.
func sameParams(t *testing.T, got xmlrpc.Params, want ...any) bool {
	t.Helper()
	w := wire(t, want...)
	if len(got) == 0 && len(w) == 0 {
		return true
	}
	return reflect.DeepEqual(got, w)
}
