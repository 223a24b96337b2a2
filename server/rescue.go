package server

import (
	"context"
	"strconv"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/maintenance"
	"github.com/scirectl/scirectl/runstate"
)

// rescuer builds the maintenance service that applies expired leases, lost
// runs and expiry dates. Each sweep passes the gate as a non-modifier
// named "rescuer.sweep", like any other operation: it never runs beside a
// db.restore or db.reset.
func (s *Server) rescuer() *maintenance.Rescuer {
	return &maintenance.Rescuer{
		Store: s.store, Interval: s.cfg.RescueInterval, Grace: s.cfg.LostGrace, Log: s.log,
		Lease: s.cfg.Lease, DeadAfter: 3 * HeartbeatInterval, Self: s.serverID,
		Enter: func(ctx context.Context) (func(), error) {
			t, err := s.gate.Enter(ctx, gate.Request{Name: "rescuer.sweep", Class: gate.NonModifier, User: "server"})
			if err != nil {
				return nil, err
			}
			return t.Release, nil
		},
		OnChange: func(changes []db.Change) {
			for _, c := range changes {
				s.log.Debug("run changed by the rescuer", "run_id", c.RunID, "job_id", c.JobID, "client_id", c.ClientID,
					"from", c.From, "to", c.To, "reason", c.Reason, "attempts", c.Attempts,
					"sent_by", strconv.FormatInt(c.ServerID, 10))
			}
			s.pushRequeued(changes) // daemon-mode clients of requeued runs (push.go)
			// A run lost, out of attempts or expired may halt its
			// rollout; one requeued frees a slot of its window.
			var jobs []int64
			for _, c := range changes {
				if c.To == runstate.Failed || c.To == runstate.Expired || c.To == runstate.Pending {
					jobs = append(jobs, c.JobID)
				}
			}
			if len(jobs) > 0 {
				s.rollouts.Enforce(db.RolloutScope{JobIDs: jobs})
			}
		},
	}
}
