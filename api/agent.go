package api

import "time"

// The agent protocol: the methods an agent calls, identified by its client
// certificate (docs/protocol.md, "Agent methods"), and agent.pollNow, which
// the server calls on a daemon-mode agent.
const (
	MethodRegister     = "agent.register"
	MethodGetJobs      = "agent.getJobs"
	MethodAckJobs      = "agent.ackJobs"
	MethodReportStatus = "agent.reportStatus"
	MethodHeartbeat    = "agent.heartbeat"
	MethodPollNow      = "agent.pollNow"
)

// MaxJobsPerCall bounds agent.getJobs' max, and the run ids of one
// agent.ackJobs or agent.heartbeat.
const MaxJobsPerCall = 1000

// NoWaitHeader asks the server to answer fault 423 at once instead of
// waiting for a request slot or for the gate.
const NoWaitHeader = "X-Scire-No-Wait"

// RegisterResult is what agent.register returns.
type RegisterResult struct {
	ClientID string `xmlrpc:"client_id" json:"client_id"`
	Status   string `xmlrpc:"status" json:"status"`
}

// AckResult is what agent.ackJobs returns.
type AckResult struct {
	Acknowledged int `xmlrpc:"acknowledged" json:"acknowledged"`
	// Stale lists runs no longer acknowledgeable: drop them.
	Stale []string `xmlrpc:"stale" json:"stale"`
}

// ReportResult is one entry of agent.reportStatus' result.
type ReportResult struct {
	RunID    string `xmlrpc:"run_id" json:"run_id"`
	Accepted bool   `xmlrpc:"accepted" json:"accepted"`
	Error    string `xmlrpc:"error,omitempty" json:"error,omitempty"`
	// Cancelled: the run was cancelled; stop it if it still runs.
	Cancelled bool `xmlrpc:"cancelled" json:"cancelled"`
}

// Heartbeat is what agent.heartbeat returns.
type Heartbeat struct {
	ServerTime   time.Time `xmlrpc:"server_time" json:"server_time"`
	PollInterval int       `xmlrpc:"poll_interval" json:"poll_interval"` // seconds
	// Cancel lists the caller's runs cancelled recently after they were
	// sent: the agent kills or drops those it holds.
	Cancel []string `xmlrpc:"cancel" json:"cancel"`
	// Lost lists the runs among those the caller says it holds that were
	// declared lost (failed, reason "lost"): the agent kills or drops them
	// and reports nothing.
	Lost []string `xmlrpc:"lost" json:"lost"`
}
