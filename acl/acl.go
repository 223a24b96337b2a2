// Package acl decides whether a user may use a permission on a client. It
// evaluates an in-memory snapshot of the rules and group memberships, so the
// check before every dispatch costs no database round trip.
//
// The rules: only active rules count; a matching deny beats any allow; no
// matching rule means deny; the built-in admin user is allowed unless a deny
// rule names admin (directly or through a user group it belongs to) —
// wildcard-subject denies are meant for everyone else.
//
// Permissions come in two namespaces (Namespaces): admin permissions, which
// act on the server and only rules targeting "*" grant (CheckServer), and
// job permissions, which a job needs on each client (Check). Neither ever
// stands in for the other.
package acl

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/selector"
)

// Admin is the built-in user that exists from first start.
const Admin = "admin"

// Decision is the outcome of a check and what decided it.
type Decision struct {
	Allowed bool
	Rule    *db.ACLRule // nil when no rule matched
	Reason  string      // human explanation, names the rule
}

// Policy is an immutable, indexed snapshot of db.PolicyData.
type Policy struct {
	ns    Namespaces
	rules []db.ACLRule
	// user -> groups containing it (transitively); client id -> groups.
	userGroups   map[string]map[string]bool
	clientGroups map[int64]map[string]bool
	// dynamic are the client groups with a selector, each with its
	// ancestors (a static group may nest a dynamic one): a client is in
	// them when the selector matches its labels, decided at each check.
	dynamic []dynamicGroup
}

// dynamicGroup is a client group whose members its selector picks.
type dynamicGroup struct {
	sel       selector.Selector
	ancestors map[string]bool // the group and every group above it
}

// New indexes a snapshot, with no admin namespace (every permission is a
// job permission); the server's policies come from a Cache that knows it.
func New(d db.PolicyData) *Policy {
	p := &Policy{userGroups: map[string]map[string]bool{}, clientGroups: map[int64]map[string]bool{}}
	for _, r := range d.Rules {
		if r.Active {
			p.rules = append(p.rules, r)
		}
	}
	userParents := parents(d.UserGroupChildren)
	for g, users := range d.UserGroupUsers {
		for _, u := range users {
			if p.userGroups[u] == nil {
				p.userGroups[u] = map[string]bool{}
			}
			closeOver(p.userGroups[u], g, userParents)
		}
	}
	clientParents := parents(d.ClientGroupChild)
	for g, ids := range d.ClientGroupIDs {
		for _, id := range ids {
			if p.clientGroups[id] == nil {
				p.clientGroups[id] = map[string]bool{}
			}
			closeOver(p.clientGroups[id], g, clientParents)
		}
	}
	for g, text := range d.ClientGroupSel {
		sel, err := selector.Parse(text)
		if err != nil {
			continue // stored by the server, which parsed it: cannot happen; matches nothing
		}
		dg := dynamicGroup{sel: sel, ancestors: map[string]bool{}}
		closeOver(dg.ancestors, g, clientParents)
		p.dynamic = append(p.dynamic, dg)
	}
	return p
}

func parents(children map[string][]string) map[string][]string {
	out := map[string][]string{}
	for parent, kids := range children {
		for _, k := range kids {
			out[k] = append(out[k], parent)
		}
	}
	return out
}

// closeOver adds g and every ancestor of g to set (cycles are harmless).
func closeOver(set map[string]bool, g string, parents map[string][]string) {
	if set[g] {
		return
	}
	set[g] = true
	for _, p := range parents[g] {
		closeOver(set, p, parents)
	}
}

// Client names the target of a check: its id, which rules naming a client
// match, its name for messages, and its labels, which decide its
// membership of dynamic groups. Facts do not: a group that selects by
// facts is never named by a rule nor nested (the store refuses both).
type Client struct {
	ID     int64
	Name   string
	Labels map[string]string
}

// Check decides whether user may run a job needing permission on client.
// A permission of the admin namespace never authorises a job, whatever the
// rules say (Namespaces): not even for the built-in admin.
func (p *Policy) Check(user, permission string, c Client) Decision {
	if err := p.ns.CheckJobPermission(permission); err != nil {
		return Decision{Reason: "denied: " + err.Error()}
	}
	return p.check(user, permission, func(r *db.ACLRule) bool { return p.matchTarget(r, c) }, "on client "+c.Name)
}

// CheckEveryClient decides whether user may run a job needing permission
// on every client, by a rule whose target is "*" (acl check USER PERM '*'
// for a job permission).
func (p *Policy) CheckEveryClient(user, permission string) Decision {
	if err := p.ns.CheckJobPermission(permission); err != nil {
		return Decision{Reason: "denied: " + err.Error()}
	}
	return p.check(user, permission, func(r *db.ACLRule) bool { return r.TargetKind == db.KindAny }, "on every client")
}

// CheckServer decides whether user may use an admin permission (such as
// acl.write or client.accept). Those act on the server, not on a client, so
// only rules whose target is "*" apply; a job permission is never granted
// here, since it means nothing on the server.
func (p *Policy) CheckServer(user, permission string) Decision {
	if len(p.ns.admin) > 0 && !p.ns.IsAdmin(permission) {
		return Decision{Reason: fmt.Sprintf("denied: %q is not an admin permission; a job permission is checked on a client, not on the server", permission)}
	}
	return p.check(user, permission, func(r *db.ACLRule) bool { return r.TargetKind == db.KindAny }, "on the server")
}

func (p *Policy) check(user, permission string, target func(*db.ACLRule) bool, where string) Decision {
	var allow *db.ACLRule
	for i := range p.rules {
		r := &p.rules[i]
		if (r.Permission != "*" && r.Permission != permission) || !target(r) {
			continue
		}
		named := p.namesUser(r, user)
		if !named && r.SubjectKind != db.KindAny {
			continue
		}
		if !r.Allow {
			if user == Admin && !named {
				continue // a wildcard deny does not bind the built-in admin
			}
			return Decision{Rule: r, Reason: fmt.Sprintf("denied by rule %d%s", r.ID, note(r))}
		}
		if allow == nil {
			allow = r
		}
	}
	if allow != nil {
		return Decision{Allowed: true, Rule: allow, Reason: fmt.Sprintf("allowed by rule %d%s", allow.ID, note(allow))}
	}
	if user == Admin {
		return Decision{Allowed: true, Reason: "allowed: built-in admin"}
	}
	return Decision{Reason: fmt.Sprintf("denied: no rule allows %s %q %s", user, permission, where)}
}

func note(r *db.ACLRule) string {
	if r.Note == "" {
		return ""
	}
	return " (" + r.Note + ")"
}

func (p *Policy) namesUser(r *db.ACLRule, user string) bool {
	switch r.SubjectKind {
	case db.KindUser:
		return r.Subject == user
	case db.KindUserGroup:
		return p.userGroups[user][r.Subject]
	}
	return false
}

func (p *Policy) matchTarget(r *db.ACLRule, c Client) bool {
	switch r.TargetKind {
	case db.KindAny:
		return true
	case db.KindClient:
		// By id alone, resolved when the rule was written: never by name,
		// which a later client may carry, and ids are never reused.
		return r.TargetID != 0 && r.TargetID == c.ID
	case db.KindClientGroup:
		if p.clientGroups[c.ID][r.Target] {
			return true
		}
		for _, dg := range p.dynamic {
			if dg.ancestors[r.Target] && dg.sel.LabelsOnly() && dg.sel.Matches(c.Labels, nil) {
				return true
			}
		}
	}
	return false
}

// Cache keeps the current Policy and reloads it when invalidated or older
// than TTL (the TTL bounds staleness when another daemon changed the rules).
type Cache struct {
	Load func(ctx context.Context) (db.PolicyData, error)
	TTL  time.Duration
	// Namespaces tells admin permissions from job permissions in every
	// Policy the cache returns.
	Namespaces Namespaces

	mu     sync.Mutex
	policy *Policy
	loaded time.Time
}

// Policy returns a current snapshot.
func (c *Cache) Policy(ctx context.Context) (*Policy, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.policy != nil && (c.TTL <= 0 || time.Since(c.loaded) < c.TTL) {
		return c.policy, nil
	}
	d, err := c.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("load ACL: %w", err)
	}
	c.policy, c.loaded = New(d), time.Now()
	c.policy.ns = c.Namespaces
	return c.policy, nil
}

// Invalidate makes the next Policy call reload; call it after any change to
// rules or groups.
func (c *Cache) Invalidate() {
	c.mu.Lock()
	c.policy = nil
	c.mu.Unlock()
}
