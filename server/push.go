package server

import (
	"context"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// The daemon's side of daemon-mode push (package push sends agent.pollNow):
// what makes it push — a job committed (pushSubmitted), runs requeued
// (pushRequeued, rescue.go), a not_before time arriving (notbefore.go, led
// by pushLeader), the daemon starting (startuppush.go) — and the last push
// shown in client.list and client.get (apiClientPush).

// pushSubmitted pushes the daemon-mode targets of a job just committed. A
// job held back by not_before is announced when that time comes instead.
// A target of any mode that waits in agent.getJobs on this daemon is woken
// there (a daemon-mode one by Push itself).
func (s *Server) pushSubmitted(clients []db.Client, notBefore time.Time) {
	later := !notBefore.IsZero() && notBefore.After(time.Now())
	for _, c := range clients {
		if c.Status != db.ClientActive {
			continue
		}
		if later {
			if c.Mode == db.ModeDaemon {
				s.push.NotBeforeChanged()
				return
			}
			continue
		}
		if c.Mode != db.ModeDaemon {
			s.waiting.Wake(c.ID)
			continue
		}
		s.push.Push(c.ID)
	}
}

// pushRequeued pushes the clients of runs the rescuer sent back to pending.
// The pusher skips clients that are not in daemon mode.
func (s *Server) pushRequeued(changes []db.Change) {
	for _, c := range changes {
		if c.To == runstate.Pending {
			s.push.Push(c.ClientID)
		}
	}
}

// apiClientPush is apiClient with this daemon's last push to the client.
func (s *Server) apiClientPush(c db.Client) api.Client {
	out := apiClient(c)
	if r, ok := s.push.LastPush(c.ID); ok {
		out.LastPush = &r
	}
	return out
}

// pushLeader reports whether this daemon watches not_before times: the
// live daemon (heartbeat within three intervals) with the lowest id. When
// the registry cannot be read it acts: a duplicate push costs an early
// poll, a missing one up to a poll interval.
func (s *Server) pushLeader(ctx context.Context, now time.Time) bool {
	self := s.serverID()
	servers, err := s.store.ListServers(ctx)
	if err != nil {
		return true
	}
	for _, si := range servers {
		if si.ID < self && now.Sub(si.HeartbeatAt) <= 3*HeartbeatInterval {
			return false
		}
	}
	return true
}
