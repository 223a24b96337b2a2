package service

import (
	"context"
	"errors"
	"github.com/scirectl/scirectl/selector"
	"strconv"
	"strings"

	"github.com/scirectl/scirectl/db"
)

// Client finds a client by reference: its id, its certificate fingerprint
// or its name. A name must designate one client: among several, the active
// one wins; otherwise it is ambiguous and the caller must use an id or a
// fingerprint.
func (s *Service) Client(ctx context.Context, ref string) (db.Client, error) {
	if ref == "" {
		return db.Client{}, refuseWhole(ErrInvalid, "empty client reference")
	}
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil && id > 0 {
		c, err := s.Store.Client(ctx, id)
		if err == nil || !errors.Is(err, db.ErrNotFound) {
			return c, err
		}
	}
	if len(ref) == 64 {
		c, err := s.Store.ClientByFingerprint(ctx, strings.ToLower(ref))
		if err == nil || !errors.Is(err, db.ErrNotFound) {
			return c, err
		}
	}
	cs, err := s.Store.ListClients(ctx, db.ClientFilter{Name: ref})
	if err != nil {
		return db.Client{}, err
	}
	switch len(cs) {
	case 0:
		return db.Client{}, refuseWhole(ErrNotFound, "no client with id, fingerprint or name %q", ref)
	case 1:
		return cs[0], nil
	}
	for _, c := range cs {
		if c.Status == db.ClientActive {
			return c, nil
		}
	}
	return db.Client{}, refuseWhole(ErrConflict, "%d clients are named %q: use the id or fingerprint", len(cs), ref)
}

// Clients resolves several references, in order (Client).
func (s *Service) Clients(ctx context.Context, refs []string) ([]db.Client, error) {
	return each(ctx, refs, s.Client)
}

// ListClients lists the clients, those of one status when f has one, and
// those any of selectors matches when there are some (package selector).
func (s *Service) ListClients(ctx context.Context, f db.ClientFilter, selectors []string) ([]db.Client, error) {
	switch f.Status {
	case "", db.ClientPending, db.ClientActive, db.ClientRejected, db.ClientRevoked:
	default:
		return nil, refuse(ErrInvalid, "status: %q is not pending, active, rejected or revoked", f.Status)
	}
	if len(selectors) == 0 {
		return s.Store.ListClients(ctx, f)
	}
	sel, err := selector.ParseUnion(selectors)
	if err != nil {
		return nil, refuse(ErrInvalid, "selectors: %v", err)
	}
	return s.chooseClients(ctx, func(name string, status db.ClientStatus, labels, facts map[string]string) bool {
		return (f.Status == "" || status == f.Status) && (f.Name == "" || name == f.Name) && sel.Matches(labels, facts)
	}, f.IDs)
}

// selected picks the clients sel matches.
func selected(sel selector.Union) pick {
	return func(_ string, _ db.ClientStatus, labels, facts map[string]string) bool {
		return sel.Matches(labels, facts)
	}
}

// LabelClients sets labels on the clients refs name and removes the keys
// of remove (kubectl's KEY=VALUE and KEY-), all in one transaction, and
// returns the clients. Keys and values follow the selector rules
// (selector.CheckLabel); a key both set and removed is refused.
func (s *Service) LabelClients(ctx context.Context, refs []string, set map[string]string, remove []string) ([]db.Client, error) {
	if len(refs) == 0 {
		return nil, refuse(ErrInvalid, "clients: at least one client")
	}
	if len(set)+len(remove) == 0 {
		return nil, refuse(ErrInvalid, "labels: nothing to set or remove")
	}
	for k, v := range set {
		if err := selector.CheckLabel(k, v); err != nil {
			return nil, refuse(ErrInvalid, "labels.set: %v", err)
		}
	}
	for _, k := range remove {
		if _, both := set[k]; both {
			return nil, refuse(ErrInvalid, "labels: %q is both set and removed", k)
		}
		if err := selector.CheckLabel(k, ""); err != nil {
			return nil, refuse(ErrInvalid, "labels.remove: %v", err)
		}
	}
	cs, err := s.Clients(ctx, refs)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return s.Store.SetClientLabels(ctx, ids, set, remove)
}

// SetClientStatus moves the clients named by refs along the enrollment
// lifecycle (pending → active | rejected, active → revoked), in order,
// stopping at the first the store refuses (those before it stay moved). It
// returns the clients moved.
func (s *Service) SetClientStatus(ctx context.Context, refs []string, to db.ClientStatus) ([]db.Client, error) {
	return each(ctx, refs, func(ctx context.Context, ref string) (db.Client, error) {
		c, err := s.Client(ctx, ref)
		if err != nil {
			return c, err
		}
		return s.Store.SetClientStatus(ctx, c.ID, to)
	})
}

// DeletedClient is a client deleted with the ACL rules that named it.
type DeletedClient struct {
	db.Client
	Rules []db.ACLRule
}

// DeleteClients deletes the clients named by refs, in order, with their
// runs, group memberships and the ACL rules naming them (ids are never
// reused, so no later client inherits a rule), stopping at the first the
// store refuses (an active client, or one with a run in flight).
func (s *Service) DeleteClients(ctx context.Context, refs []string) ([]DeletedClient, error) {
	out, err := each(ctx, refs, func(ctx context.Context, ref string) (DeletedClient, error) {
		c, err := s.Client(ctx, ref)
		if err != nil {
			return DeletedClient{}, err
		}
		rules, err := s.Store.DeleteClient(ctx, c.ID)
		return DeletedClient{Client: c, Rules: rules}, err
	})
	if len(out) > 0 {
		s.invalidate() // memberships and rules went with the clients
	}
	return out, err
}
