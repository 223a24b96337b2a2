package service

import (
	"context"
	"fmt"
	"strings"

	"github.com/scirectl/scirectl/acl"
	"github.com/scirectl/scirectl/db"
)

// Rules lists the ACL rules in id order.
func (s *Service) Rules(ctx context.Context) ([]db.ACLRule, error) {
	return s.Store.ListACLRules(ctx)
}

// NewRule is a rule to add, as an operator writes it.
type NewRule struct {
	// Subject is "user:NAME", "group:NAME" (a user group), "*", or a bare
	// user name.
	Subject string
	// Permission is a job permission such as run, an admin permission
	// such as acl.write (target "*" only), or "*".
	Permission string
	// Target is "client:REF" (a registered client by id, fingerprint or
	// name, resolved now to its id), "group:NAME" (a client group), "*",
	// or a bare client reference.
	Target string
	// Action is "allow" or "deny"; empty allows.
	Action string
	Note   string
	// Active switches the rule on (nil: on).
	Active *bool
	// CreatedBy names the operator adding the rule.
	CreatedBy string
}

// AddRule checks a rule and adds it. Refusals name the field at fault
// ("permission: …"). Deny wins over allow; no rule means deny.
func (s *Service) AddRule(ctx context.Context, in NewRule) (db.ACLRule, error) {
	r := db.ACLRule{Permission: in.Permission, Allow: true, Active: true, Note: in.Note, CreatedBy: in.CreatedBy}
	if in.Subject == "" {
		return db.ACLRule{}, refuse(ErrInvalid, "subject: required")
	}
	var err error
	if r.SubjectKind, r.Subject, err = parseSubject(in.Subject); err != nil {
		return db.ACLRule{}, err
	}
	if r.Permission == "" {
		return db.ACLRule{}, refuse(ErrInvalid, "permission: required")
	}
	if strings.ContainsFunc(r.Permission, func(c rune) bool { return c <= ' ' || c == 0x7f }) || len(r.Permission) > 100 {
		return db.ACLRule{}, refuse(ErrInvalid, "permission: %q must be 1..100 characters without spaces", r.Permission)
	}
	if in.Target == "" {
		return db.ACLRule{}, refuse(ErrInvalid, "target: required")
	}
	if r.TargetKind, r.Target, err = parseTarget(in.Target); err != nil {
		return db.ACLRule{}, err
	}
	if err := s.Namespaces.CheckRulePermission(r.Permission, r.TargetKind == db.KindAny); err != nil {
		return db.ACLRule{}, refuse(ErrInvalid, "permission: %v", err)
	}
	if r.TargetKind == db.KindClient {
		// Resolved now, once: the rule names this client's id, and no
		// client that later carries the same name (or, ids being never
		// reused, any other client) is matched by it.
		c, err := s.Client(ctx, r.Target)
		if err != nil {
			return db.ACLRule{}, err
		}
		r.TargetID, r.Target = c.ID, c.Name
	}
	switch in.Action {
	case "", "allow":
	case "deny":
		r.Allow = false
	default:
		return db.ACLRule{}, refuse(ErrInvalid, "action: %q is neither allow nor deny", in.Action)
	}
	if in.Active != nil {
		r.Active = *in.Active
	}
	r, err = s.Store.AddACLRule(ctx, r)
	if err != nil {
		return db.ACLRule{}, err
	}
	s.invalidate()
	return r, nil
}

// parseSubject reads "user:NAME", "group:NAME", "*" or a bare user name.
func parseSubject(v string) (kind, name string, err error) {
	return parseRef("subject", v, db.KindUser, map[string]string{"user": db.KindUser, "group": db.KindUserGroup})
}

// parseTarget reads "client:REF", "group:NAME", "*" or a bare client ref.
func parseTarget(v string) (kind, name string, err error) {
	return parseRef("target", v, db.KindClient, map[string]string{"client": db.KindClient, "group": db.KindClientGroup})
}

func parseRef(field, v, bare string, prefixes map[string]string) (kind, name string, err error) {
	if v == "*" {
		return db.KindAny, "", nil
	}
	if p, rest, ok := strings.Cut(v, ":"); ok {
		if k, known := prefixes[p]; known {
			kind, name = k, rest
		}
	}
	if kind == "" {
		kind, name = bare, v
	}
	if err := CheckName(field, name); err != nil {
		return "", "", err
	}
	return kind, name, nil
}

// RemoveRule removes a rule and returns it.
func (s *Service) RemoveRule(ctx context.Context, id int64) (db.ACLRule, error) {
	r, err := s.Store.RemoveACLRule(ctx, id)
	if err != nil {
		return db.ACLRule{}, err
	}
	s.invalidate()
	return r, nil
}

// SetRuleActive switches a rule on or off without removing it.
func (s *Service) SetRuleActive(ctx context.Context, id int64, active bool) (db.ACLRule, error) {
	r, err := s.Store.SetACLRuleActive(ctx, id, active)
	if err != nil {
		return db.ACLRule{}, err
	}
	s.invalidate()
	return r, nil
}

// Decision is an ACL decision with what was asked: Target is "*" or the
// client as "NAME (client ID)".
type Decision struct {
	acl.Decision
	User, Permission, Target string
}

// Check explains whether user may use permission on target: a client id,
// name or fingerprint ("client:" optional), or "*" (or empty) for an admin
// permission on the server, or a job permission on every client. Checking
// another user than the caller needs acl.read.
func (s *Service) Check(ctx context.Context, caller db.User, user, permission, target string) (Decision, error) {
	if user != caller.Name {
		if err := s.authorize(ctx, PermACLRead); err != nil {
			return Decision{}, err
		}
		if _, err := s.Store.UserByName(ctx, user); err != nil {
			return Decision{}, err
		}
	}
	policy, err := s.policy(ctx)
	if err != nil {
		return Decision{}, err
	}
	out := Decision{User: user, Permission: permission}
	if target == "*" || target == "" {
		out.Target = "*"
		if s.Namespaces.Reserved(permission) {
			out.Decision = policy.CheckServer(user, permission)
		} else {
			out.Decision = policy.CheckEveryClient(user, permission) // a job permission on every client
		}
		return out, nil
	}
	c, err := s.Client(ctx, strings.TrimPrefix(target, "client:"))
	if err != nil {
		return Decision{}, err
	}
	out.Target = fmt.Sprintf("%s (client %d)", c.Name, c.ID)
	out.Decision = policy.Check(user, permission, acl.Client{ID: c.ID, Name: c.Name, Labels: c.Labels})
	return out, nil
}
