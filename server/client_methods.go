package server

import (
	"context"
	"strconv"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/xmlrpc"
)

func apiClient(c db.Client) api.Client {
	return api.Client{
		ID: strconv.FormatInt(c.ID, 10), Name: c.Name, Fingerprint: c.Fingerprint, Status: string(c.Status),
		Hostname: c.Hostname, OS: c.OS, Arch: c.Arch, Version: c.Version, Mode: c.Mode, CallbackURL: c.CallbackURL,
		RegisteredAt: c.RegisteredAt, LastSeen: optTime(c.LastSeen),
	}
}

func (s *Server) clientList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 1); err != nil {
		return nil, err
	}
	var f db.ClientFilter
	if p.Has(0) {
		in, err := p.Struct(0, "filter")
		if err != nil {
			return nil, err
		}
		if err := in.Unknown("status"); err != nil {
			return nil, err
		}
		st, _, err := in.String("status")
		if err != nil {
			return nil, err
		}
		switch db.ClientStatus(st) {
		case "", db.ClientPending, db.ClientActive, db.ClientRejected, db.ClientRevoked:
			f.Status = db.ClientStatus(st)
		default:
			return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "client.list: status: %q is not pending, active, rejected or revoked", st)
		}
	}
	cs, err := s.store.ListClients(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]api.Client, len(cs))
	for i, c := range cs {
		out[i] = apiClient(c)
	}
	return out, nil
}

func (s *Server) clientGet(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	ref, err := p.String(0, "client")
	if err != nil {
		return nil, err
	}
	c, err := s.resolveClient(ctx, ref)
	if err != nil {
		return nil, err
	}
	return apiClient(c), nil
}

// clientSetStatus moves clients along the enrollment lifecycle; the store
// refuses moves the lifecycle does not allow.
func (s *Server) clientSetStatus(to db.ClientStatus) func(context.Context, xmlrpc.Params) (any, error) {
	return func(ctx context.Context, p xmlrpc.Params) (any, error) {
		if err := p.Count(1, 1); err != nil {
			return nil, err
		}
		refs, err := p.Array(0, "clients")
		if err != nil {
			return nil, err
		}
		if len(refs) == 0 {
			return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "param 1 (clients): empty: name at least one client")
		}
		out := make([]api.Client, 0, len(refs))
		for i, r := range refs {
			var ref string
			switch v := r.(type) {
			case string:
				ref = v
			case int64:
				ref = strconv.FormatInt(v, 10)
			default:
				return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "param 1 (clients): element %d: want a string or int, got %T", i+1, r)
			}
			c, err := s.resolveClient(ctx, ref)
			if err != nil {
				return nil, err
			}
			c, err = s.store.SetClientStatus(ctx, c.ID, to)
			if err != nil {
				return nil, err
			}
			out = append(out, apiClient(c))
		}
		return out, nil
	}
}
