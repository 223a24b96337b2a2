package server

import (
	"context"
	"runtime"
	"strconv"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/xmlrpc"
)

// PermServerRead lets an operator see the daemons and their state.
const PermServerRead = "server.read"

func (s *Server) serverOperations() []Operation {
	return []Operation{
		{Name: api.MethodServerList, Class: gate.NonModifier, caller: byOperator, Permission: PermServerRead, handler: s.serverList,
			Signature: []string{"array"},
			Help: "List the daemons registered in the database, newest first: [{id, address, hostname, version, started_at, heartbeat_at, alive}]. " +
				"A daemon is alive while its heartbeat is younger than three heartbeat intervals (30s); a cleanly stopped one is dead at once."},
		{Name: api.MethodServerStatus, Class: gate.NonModifier, caller: byOperator, Permission: PermServerRead, handler: s.serverStatus,
			Signature: []string{"struct"},
			Help: "This daemon's state: {id, address, version, go_version, started_at, database (URL without password), schema_version, " +
				"gate: {running_readers, modifier, waiting, admitted, waited, busy, cancelled}}."},
	}
}

func (s *Server) apiServer(si db.ServerInfo, now time.Time) api.ServerInfo {
	return api.ServerInfo{ID: strconv.FormatInt(si.ID, 10), Address: si.Address, Hostname: si.Hostname, Version: si.Version,
		StartedAt: si.StartedAt, HeartbeatAt: si.HeartbeatAt, Alive: now.Sub(si.HeartbeatAt) < 3*HeartbeatInterval}
}

func (s *Server) serverList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 0); err != nil {
		return nil, err
	}
	servers, err := s.store.ListServers(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return mapSlice(servers, func(si db.ServerInfo) api.ServerInfo { return s.apiServer(si, now) }), nil
}

func (s *Server) serverStatus(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 0); err != nil {
		return nil, err
	}
	out := api.ServerStatus{Address: s.cfg.Listen, Version: s.cfg.Version, GoVersion: runtime.Version(), Database: db.Redact(s.cfg.DB)}
	if i := s.info.Load(); i != nil {
		out.ID, out.StartedAt = strconv.FormatInt(i.ID, 10), i.StartedAt
	}
	v, _, err := s.store.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	out.SchemaVersion = int(v)
	st := s.gate.Stats()
	out.Gate = api.GateStats{RunningReaders: st.Readers, Modifier: st.Modifier, Waiting: st.Waiting,
		Admitted: int64(st.Admitted), Waited: int64(st.Waited), Busy: int64(st.Busy), Cancelled: int64(st.Cancelled)}
	return out, nil
}
