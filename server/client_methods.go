package server

import (
	"context"
	"fmt"
	"strconv"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/service"
	"github.com/scirectl/scirectl/xmlrpc"
)

func (s *Server) clientOperations() []Operation {
	return []Operation{
		{Name: api.MethodClientList, Class: gate.NonModifier, caller: byOperator, Permission: PermClientRead, handler: s.clientList,
			Signature: []string{"array", "struct"},
			Help: "List clients. Optional param: struct {status: pending|active|rejected|revoked, selectors: [selector] (those any matches; " +
				"KEY=VALUE, KEY!=VALUE, KEY in (A,B), KEY notin (A,B), KEY, !KEY, commas for AND; fact.KEY names a fact)}. " +
				"Returns [{id, name, fingerprint, status, hostname, os, arch, version, mode, registered_at, last_seen, facts, labels}]."},
		{Name: api.MethodClientLabel, Class: gate.Modifier, caller: byOperator, Permission: PermClientLabel, handler: s.clientLabel,
			Signature: []string{"array", "array", "struct"},
			Help: "Set and remove labels of clients, all in one transaction. Params: array of client ids, names or fingerprints; " +
				"struct {set: {KEY: VALUE}, remove: [KEY]}. Keys and values follow the selector rules (fault 400 naming them). Returns the clients."},
		{Name: api.MethodClientGet, Class: gate.NonModifier, caller: byOperator, Permission: PermClientRead, handler: s.clientGet,
			Signature: []string{"struct", "string"},
			Help:      "Get one client by id, name or fingerprint."},
		{Name: api.MethodClientAccept, Class: gate.Modifier, caller: byOperator, Permission: PermClientAccept, handler: s.clientSetStatus(db.ClientActive),
			Signature: []string{"array", "array"},
			Help: "Accept pending clients. Param: array of client ids, names or fingerprints. Returns the clients. " +
				"Fault 409 when a client is not pending or its name is held by another active client; nothing changes then for that client and those after it."},
		{Name: api.MethodClientReject, Class: gate.Modifier, caller: byOperator, Permission: PermClientReject, handler: s.clientSetStatus(db.ClientRejected),
			Signature: []string{"array", "array"},
			Help:      "Reject pending clients. Param: array of client ids, names or fingerprints. Returns the clients."},
		{Name: api.MethodClientRevoke, Class: gate.Modifier, caller: byOperator, Permission: PermClientRevoke, handler: s.clientSetStatus(db.ClientRevoked),
			Signature: []string{"array", "array"},
			Help:      "Revoke active clients: they can call nothing but agent.register afterwards. Param: array of client ids, names or fingerprints."},
		{Name: api.MethodClientDelete, Class: gate.Modifier, caller: byOperator, Permission: PermClientDelete, handler: s.clientDelete,
			Signature: []string{"array", "array"},
			Help: "Delete clients that are not active (revoke them first), with their runs and group memberships. " +
				"The ACL rules naming a client go with it, in the same transaction, and the audit record of the delete lists them; " +
				"ids are never reused, so no later client is named by them. " +
				"Param: array of client ids, names or fingerprints. Returns the deleted clients. Fault 409 for an active client or one with a run in flight."},
	}
}

func apiClient(c db.Client) api.Client {
	return api.Client{
		ID: strconv.FormatInt(c.ID, 10), Name: c.Name, Fingerprint: c.Fingerprint, Status: string(c.Status),
		Hostname: c.Hostname, OS: c.OS, Arch: c.Arch, Version: c.Version, Mode: c.Mode, CallbackURL: c.CallbackURL,
		RegisteredAt: c.RegisteredAt, LastSeen: optTime(c.LastSeen), Facts: nonNil(c.Facts), Labels: nonNil(c.Labels),
	}
}

// nonNil is m, or an empty map: an empty struct on the wire, {} in JSON.
func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func (s *Server) clientLabel(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(2, 2); err != nil {
		return nil, err
	}
	refs, err := p.StringSlice(0, "clients")
	if err != nil {
		return nil, err
	}
	in, err := p.Struct(1, "labels")
	if err != nil {
		return nil, err
	}
	if err := in.Unknown("set", "remove"); err != nil {
		return nil, err
	}
	set, _, err := in.StringMap("set")
	if err != nil {
		return nil, err
	}
	remove, _, err := in.StringSlice("remove")
	if err != nil {
		return nil, err
	}
	cs, err := s.svc.LabelClients(ctx, refs, set, remove)
	if err != nil {
		return nil, inMethod(api.MethodClientLabel, err)
	}
	return mapSlice(cs, apiClient), nil
}

func (s *Server) clientList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 1); err != nil {
		return nil, err
	}
	var f db.ClientFilter
	var selectors []string
	if p.Has(0) {
		in, err := p.Struct(0, "filter")
		if err != nil {
			return nil, err
		}
		if err := in.Unknown("status", "selectors"); err != nil {
			return nil, err
		}
		st, _, err := in.String("status")
		if err != nil {
			return nil, err
		}
		f.Status = db.ClientStatus(st)
		if selectors, _, err = in.StringSlice("selectors"); err != nil {
			return nil, err
		}
	}
	s.flushSeen(ctx) // show the last polls too
	cs, err := s.svc.ListClients(ctx, f, selectors)
	if err != nil {
		return nil, inMethod(api.MethodClientList, err)
	}
	return mapSlice(cs, s.apiClientPush), nil
}

func (s *Server) clientGet(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	ref, err := p.String(0, "client")
	if err != nil {
		return nil, err
	}
	c, err := s.svc.Client(ctx, ref)
	if err != nil {
		return nil, err
	}
	return s.apiClientPush(c), nil
}

// clientSetStatus moves clients along the enrollment lifecycle; the store
// refuses moves the lifecycle does not allow.
func (s *Server) clientSetStatus(to db.ClientStatus) xmlrpc.Handler {
	return func(ctx context.Context, p xmlrpc.Params) (any, error) {
		refs, err := clientRefs(p)
		if err != nil {
			return nil, err
		}
		cs, err := s.svc.SetClientStatus(ctx, refs, to)
		if err != nil {
			return nil, err
		}
		return mapSlice(cs, apiClient), nil
	}
}

func (s *Server) clientDelete(ctx context.Context, p xmlrpc.Params) (any, error) {
	refs, err := clientRefs(p)
	if err != nil {
		return nil, err
	}
	gone, err := s.svc.DeleteClients(ctx, refs)
	for _, c := range gone {
		noteRemovedRules(ctx, fmt.Sprintf("client %d (%s)", c.ID, c.Name), c.Rules)
	}
	if err != nil {
		return nil, err
	}
	return mapSlice(gone, func(c service.DeletedClient) api.Client { return apiClient(c.Client) }), nil
}

// clientRefs reads the one parameter of the client.* writes: the clients,
// by id, name or fingerprint.
func clientRefs(p xmlrpc.Params) ([]string, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	return refList(p, 0, "clients")
}

// refList reads parameter i as a non-empty array of object references:
// names, or ids given as strings or (as docs/protocol.md allows) XML-RPC ints.
func refList(p xmlrpc.Params, i int, name string) ([]string, error) {
	arr, err := p.Array(i, name)
	if err != nil {
		return nil, err
	}
	if len(arr) == 0 {
		return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "param %d (%s): empty: name at least one", i+1, name)
	}
	out := make([]string, len(arr))
	for k, v := range arr {
		switch v := v.(type) {
		case string:
			out[k] = v
		case int64:
			out[k] = strconv.FormatInt(v, 10)
		default:
			return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "param %d (%s): item %d: want a string or int, got %T", i+1, name, k+1, v)
		}
	}
	return out, nil
}
