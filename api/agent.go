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
	MethodOutput       = "agent.output"
	MethodPollNow      = "agent.pollNow"
)

// MaxJobsPerCall bounds agent.getJobs' max, and the run ids of one
// agent.ackJobs or agent.heartbeat.
const MaxJobsPerCall = 1000

// MaxJobWait bounds agent.getJobs' wait: the long poll, which must answer
// well within the agent's call timeout and the server's write timeout.
const MaxJobWait = 30 * time.Second

// Limits of agent.output: the chunks of one call, the bytes of data in
// one chunk, and the offsets (XML-RPC's int is 32 bits: an agent stops
// streaming a run whose output passes MaxOutputOffset; its final report
// still carries the bounded output).
const (
	MaxChunksPerCall = 100
	MaxOutputChunk   = 256 << 10
	MaxOutputOffset  = 1<<31 - 1
)

// OutputChunk is a piece of a running job's output (agent.output): Data
// starts at byte Offset of the run's output stream, which counts the bytes
// the script wrote as the agent read them (made valid UTF-8 and XML-safe).
// A chunk ends at a character boundary.
type OutputChunk struct {
	RunID  string `xmlrpc:"run_id" json:"run_id"`
	Offset int    `xmlrpc:"offset" json:"offset"`
	Data   string `xmlrpc:"data" json:"data"`
}

// OutputAck is what became of one chunk of agent.output, at its index.
type OutputAck struct {
	RunID string `xmlrpc:"run_id" json:"run_id"`
	// Offset is how much of the run's output the server now has: the
	// next chunk starts there. A chunk past it (one before was lost) is
	// not stored: send again from Offset.
	Offset int `xmlrpc:"offset" json:"offset"`
	// Accepted: stored, or the server had it already (a resent chunk).
	Accepted bool `xmlrpc:"accepted" json:"accepted"`
	// Stop: send no more output of this run (it is final, or not the
	// caller's to stream); the final report carries the output.
	Stop  bool   `xmlrpc:"stop" json:"stop"`
	Error string `xmlrpc:"error,omitempty" json:"error,omitempty"`
}

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
	// FactsHash is the hash (client/facts Facts.Hash) of the facts the
	// server holds for the caller ("" for none): an agent whose own facts
	// hash otherwise registers again, with its facts.
	FactsHash string `xmlrpc:"facts_hash" json:"facts_hash"`
}
