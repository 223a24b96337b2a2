package server

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/datadir"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/xmlrpc"
)

// PermDBAdmin lets an operator back up, restore, reset and inspect the
// database. It is one permission, not four, because each of them hands over
// everything: a backup holds every job and token hash, a restore or a reset
// replaces every rule.
const PermDBAdmin = "db.admin"

// dbOperations are the database maintenance operations (docs/protocol.md, "The gate and the blacklist"): all
// modifiers, so each runs alone, and all gated by db.admin.
func (s *Server) dbOperations() []Operation {
	return []Operation{
		{Name: api.MethodDBBackup, Class: gate.Modifier, caller: byOperator, Permission: PermDBAdmin, handler: s.dbBackup,
			Signature: []string{"struct", "string"},
			Help: "Write a consistent copy of the whole database into a new file. Param: absolute path on the SERVER host " +
				"(its directory must exist; fault 404 otherwise, 409 when the file exists, 400 for a relative path). " +
				"Returns {path, bytes, duration_ms}. The copy holds token hashes: it is created mode 0600."},
		{Name: api.MethodDBRestore, Class: gate.Modifier, caller: byOperator, Permission: PermDBAdmin, handler: s.dbRestore,
			Signature: []string{"struct", "string"},
			Help: "Replace the entire database, atomically, with a file db.backup wrote. Param: absolute path on the SERVER host. " +
				"Fault 404 for a missing file, 400 for a file that is not a scirectl backup or has another schema version " +
				"(nothing is changed then). Users, tokens and rules become those of the backup; the admin token file is rewritten " +
				"when the backup does not know it. Returns {path, schema_version, admin_token_renewed, admin_token_file}."},
		{Name: api.MethodDBReset, Class: gate.Modifier, caller: byOperator, Permission: PermDBAdmin, handler: s.dbReset,
			Signature: []string{"struct", "string"},
			Help: "Delete every job, run, client, user, token, group, rule and audit entry, keeping the schema. " +
				"Param: the confirmation \"reset\". Afterwards only the built-in admin exists, with a fresh token in the admin token file. " +
				"Returns {schema_version, admin_token_file}."},
		{Name: api.MethodDBMigrate, Class: gate.Modifier, caller: byOperator, Permission: PermDBAdmin, handler: s.dbMigrate,
			Signature: []string{"struct"},
			Help: "Report the database schema version: {version, latest, dirty}. The server migrates its database when it starts, " +
				"so this changes nothing; a newer binary's `serve` (or `scirectl db migrate --offline`) applies newer migrations."},
	}
}

func (s *Server) dbBackup(ctx context.Context, p xmlrpc.Params) (any, error) {
	path, err := oneString(p, "path")
	if err != nil {
		return nil, err
	}
	out, err := s.svc.Backup(ctx, path)
	if err != nil {
		return nil, inMethod(api.MethodDBBackup, err)
	}
	s.log.Info("database backed up", "request_id", requestFrom(ctx).ID, "path", out.Path, "bytes", out.Bytes, "by", callingUser(ctx).Name)
	return out, nil
}

func (s *Server) dbRestore(ctx context.Context, p xmlrpc.Params) (any, error) {
	path, err := oneString(p, "path")
	if err != nil {
		return nil, err
	}
	out, err := s.svc.Restore(ctx, path, s.repairAdmin)
	if err != nil {
		return nil, inMethod(api.MethodDBRestore, err)
	}
	s.log.Warn("database restored", "request_id", requestFrom(ctx).ID, "path", out.Path, "by", callingUser(ctx).Name)
	return out, nil
}

func (s *Server) dbReset(ctx context.Context, p xmlrpc.Params) (any, error) {
	word, err := oneString(p, "confirmation")
	if err != nil {
		return nil, err
	}
	// The audit trail goes with everything else; intercept records this
	// call after the handler returns, so the new trail starts with who
	// emptied it.
	out, err := s.svc.Reset(ctx, word, s.repairAdmin)
	if err != nil {
		return nil, inMethod(api.MethodDBReset, err)
	}
	s.log.Warn("database reset", "request_id", requestFrom(ctx).ID, "by", callingUser(ctx).Name)
	return out, nil
}

func (s *Server) dbMigrate(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 0); err != nil {
		return nil, err
	}
	return s.svc.SchemaVersion(ctx)
}

// oneString reads the only parameter of a call, a string.
func oneString(p xmlrpc.Params, name string) (string, error) {
	if err := p.Count(1, 1); err != nil {
		return "", err
	}
	return p.String(0, name)
}

// repairAdmin is the service's AdminRepair for this daemon (afterReplace).
func (s *Server) repairAdmin(ctx context.Context) (bool, string, error) {
	renewed, err := s.afterReplace(ctx)
	return renewed, s.paths.AdminToken(), err
}

// afterReplace brings the server in line with a database whose contents
// were replaced (restore) or emptied (reset): the ACL cache is dropped, the
// admin user and the admin token file are made to work again, the client
// last-seen throttle forgets clients that may no longer exist, and this
// daemon registers again, since the servers table was replaced as well.
// It reports whether the admin token file was rewritten.
func (s *Server) afterReplace(ctx context.Context) (bool, error) {
	s.policy.Invalidate()
	s.seen.forget()

	before, _ := os.ReadFile(s.paths.AdminToken())
	if err := datadir.EnsureAdmin(ctx, s.store, s.paths); err != nil {
		return false, fmt.Errorf("admin token: %w", err)
	}
	after, _ := os.ReadFile(s.paths.AdminToken())
	renewed := !bytes.Equal(before, after)
	if renewed {
		s.log.Warn("admin token renewed: the database did not know it", "file", s.paths.AdminToken())
	}

	if old := s.info.Load(); old != nil {
		host, _ := os.Hostname()
		info, err := s.store.RegisterServer(ctx, db.ServerInfo{Address: s.cfg.Listen, Hostname: host, Version: s.cfg.Version, StartedAt: old.StartedAt})
		if err != nil {
			return renewed, fmt.Errorf("register this server again: %w", err)
		}
		now := time.Now().UTC()
		if err := s.store.HeartbeatServer(ctx, info.ID, now); err == nil {
			info.HeartbeatAt = now
		}
		s.info.Store(&info)
		s.log.Info("server registered again", "server_id", info.ID)
	}
	return renewed, nil
}
