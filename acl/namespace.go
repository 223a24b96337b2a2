package acl

import (
	"fmt"
	"sort"
	"strings"
)

// Namespaces tells the two kinds of permission apart. Admin permissions
// (acl.write, audit.read, client.accept, …) act on the server; job
// permissions (run, deploy, …) are what a job needs on each client it runs
// on. The two never mix: an admin permission never authorises a job — else
// `acl add bob audit.read '*'` and a job asking for "audit.read" would run
// as root on every machine — and a rule naming a job permission never
// grants an admin action.
//
// The admin namespace is every permission the server checks, and every
// other name in one of the server's areas (the part before the dot of its
// operations: "client.", "acl.", …), which are reserved so that an admin
// permission added later cannot collide with an existing job permission.
// The zero value reserves nothing: every name is a job permission.
type Namespaces struct {
	admin map[string]bool
	areas map[string]bool
}

// NewNamespaces builds the admin namespace from the permissions the server
// checks and the areas of its operations.
func NewNamespaces(adminPermissions, areas []string) Namespaces {
	n := Namespaces{admin: map[string]bool{}, areas: map[string]bool{}}
	for _, p := range adminPermissions {
		n.admin[p] = true
	}
	for _, a := range areas {
		n.areas[a] = true
	}
	return n
}

// IsAdmin reports whether perm is an admin permission the server checks.
func (n Namespaces) IsAdmin(perm string) bool { return n.admin[perm] }

// Reserved reports whether perm belongs to the admin namespace: an admin
// permission, or any other name in one of the server's areas.
func (n Namespaces) Reserved(perm string) bool {
	if n.admin[perm] {
		return true
	}
	area, _, ok := strings.Cut(perm, ".")
	return ok && n.areas[area]
}

// Admin lists the admin permissions, sorted.
func (n Namespaces) Admin() []string {
	out := make([]string, 0, len(n.admin))
	for p := range n.admin {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// CheckJobPermission says why perm cannot be a job's permission: "*"
// (which names every permission, in rules only) and names of the admin
// namespace are refused.
func (n Namespaces) CheckJobPermission(perm string) error {
	switch {
	case perm == "*":
		return fmt.Errorf(`"*" names every permission in an ACL rule; a job needs one permission, such as run`)
	case n.IsAdmin(perm):
		return fmt.Errorf("%q is an admin permission, which never authorises a job; use a job permission such as run", perm)
	case n.Reserved(perm):
		area, _, _ := strings.Cut(perm, ".")
		return fmt.Errorf("%q is in the admin namespace (names starting %q are reserved for the server's permissions); use a job permission such as run", perm, area+".")
	}
	return nil
}

// CheckRulePermission says why a rule with permission perm and a target
// that is (or is not) "*" could never apply: an admin permission acts on
// the server and needs the target "*"; a reserved name that is not an
// admin permission is neither.
func (n Namespaces) CheckRulePermission(perm string, anyTarget bool) error {
	switch {
	case perm == "*":
		return nil
	case n.IsAdmin(perm):
		if !anyTarget {
			return fmt.Errorf("%q is an admin permission: it acts on the server, so its target must be \"*\"", perm)
		}
	case n.Reserved(perm):
		return fmt.Errorf("%q is not an admin permission the server checks (see acl check or docs/protocol.md), and names in its area are reserved for them", perm)
	}
	return nil
}
