package server

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/blacklist"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/service"
	"github.com/scirectl/scirectl/xmlrpc"
)

// PermBlacklistWrite lets an operator edit the blacklist through the
// server; reading it needs nothing (everyone may learn what is refused).
const PermBlacklistWrite = "blacklist.write"

func (s *Server) blacklistOperations() []Operation {
	return []Operation{
		{Name: api.MethodBlacklistList, Class: gate.NonModifier, caller: byOperator, handler: s.blacklistList,
			Signature: []string{"array"},
			Help:      "The blacklist in force: [{pattern, line, matches: [operations it denies]}] in file order."},
		{Name: api.MethodBlacklistCheck, Class: gate.NonModifier, caller: byOperator, handler: s.blacklistCheck,
			Signature: []string{"struct", "string"},
			Help:      "Is an operation blacklisted? Param: operation name. Returns {operation, blacklisted, pattern?, line?}. Fault 404 for an unknown operation."},
		{Name: api.MethodBlacklistAdd, Class: gate.Modifier, caller: byOperator, Permission: PermBlacklistWrite, handler: s.blacklistEdit(true),
			Signature: []string{"array", "array", "boolean"},
			Help: "Add patterns (operation names, * globs) to the blacklist file, rewritten atomically and reloaded. Params: array of patterns, optional force. " +
				"A pattern that would deny blacklist.remove itself needs force: afterwards only an edit of the file can undo it. Returns the new list."},
		{Name: api.MethodBlacklistRemove, Class: gate.Modifier, caller: byOperator, Permission: PermBlacklistWrite, handler: s.blacklistEdit(false),
			Signature: []string{"array", "array"},
			Help:      "Remove patterns, exactly as listed, from the blacklist file (rewritten atomically and reloaded). Fault 404 for a pattern not in it. Returns the new list."},
	}
}

// OperationNames lists every operation name, for the blacklist and the
// class table of a server that is not running (the CLI's --offline).
func OperationNames() []string {
	s := &Server{}
	var names []string
	for _, ops := range s.operationGroups() {
		for _, op := range ops {
			names = append(names, op.Name)
		}
	}
	sort.Strings(names)
	return names
}

func (s *Server) opNames() []string {
	names := make([]string, 0, len(s.ops))
	for n := range s.ops {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LoadBlacklist (re)reads the blacklist file. On error the list in force
// stays as it was, so a bad edit never opens up denied operations.
func (s *Server) LoadBlacklist() error {
	l, err := blacklist.Load(s.paths.Blacklist(), s.opNames())
	if err != nil {
		return err
	}
	old := s.blacklist.Swap(l)
	if old != nil {
		s.log.Info("blacklist reloaded", "file", s.paths.Blacklist(), "patterns", strings.Join(l.Patterns(), " "))
	}
	return nil
}

// blacklisted refuses an operation the blacklist names, with fault 405,
// logged and audited.
func (s *Server) blacklisted(ctx context.Context, method, who string) error {
	e, ok := s.blacklist.Load().Match(method)
	if !ok {
		return nil
	}
	reason := fmt.Sprintf("%s:%d: %q", s.paths.Blacklist(), e.Line, e.Pattern)
	s.log.Warn("operation blacklisted", "request_id", requestFrom(ctx).ID, "method", method, "caller", who, "entry", reason)
	s.record(ctx, db.AuditEntry{Actor: who, Name: method, Outcome: "blacklisted", Detail: reason})
	return xmlrpc.Faultf(xmlrpc.CodeBlacklisted, "operation %s is blacklisted (%s)", method, reason)
}

func (s *Server) blacklistList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 0); err != nil {
		return nil, err
	}
	names := s.opNames()
	out := []api.BlacklistEntry{}
	for _, e := range s.blacklist.Load().Entries() {
		matches := []string{}
		for _, n := range names {
			if blacklist.Matches(e.Pattern, n) {
				matches = append(matches, n)
			}
		}
		out = append(out, api.BlacklistEntry{Pattern: e.Pattern, Line: e.Line, Matches: matches})
	}
	return out, nil
}

func (s *Server) blacklistCheck(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	name, err := p.String(0, "operation")
	if err != nil {
		return nil, err
	}
	if _, ok := s.ops[name]; !ok {
		return nil, xmlrpc.Faultf(xmlrpc.CodeNotFound, "blacklist.check: no operation %q", name)
	}
	out := api.BlacklistCheck{Operation: name}
	if e, ok := s.blacklist.Load().Match(name); ok {
		out.Blacklisted, out.Pattern, out.Line = true, e.Pattern, e.Line
	}
	return out, nil
}

func (s *Server) blacklistEdit(add bool) xmlrpc.Handler {
	return func(ctx context.Context, p xmlrpc.Params) (any, error) {
		if err := p.Count(1, 2); err != nil {
			return nil, err
		}
		patterns, err := p.StringSlice(0, "patterns")
		if err != nil {
			return nil, err
		}
		if len(patterns) == 0 {
			return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "param 1 (patterns): empty: name at least one operation")
		}
		force := false
		if p.Has(1) {
			if !add {
				return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "blacklist.remove takes no force parameter")
			}
			if force, err = p.Bool(1, "force"); err != nil {
				return nil, err
			}
		}
		if _, err := service.EditBlacklist(s.paths.Blacklist(), s.opNames(), add, force, patterns); err != nil {
			return nil, err
		}
		if err := s.LoadBlacklist(); err != nil {
			return nil, err
		}
		return s.blacklistList(ctx, nil)
	}
}
