// Package agent is the reference scirectl agent, the code behind
// `scirectl client poll` (docs/protocol.md, "Agent methods"). It asks the server for work over the
// agent XML-RPC protocol, runs each job's script and reports the outcome.
//
// Its one promise: an agent killed at any point loses no acknowledged job
// and no finished result. Everything follows from keeping each fact on disk
// before the server is told about it, and from ordering the local steps so
// that a crash between any two of them leaves a state that start-up
// recovery can read unambiguously:
//
//  1. getJobs → each job document is written (temp file, fsync, rename,
//     directory fsync) to queue/<run>.xml, and only then acknowledged. A crash
//     before the ack leaves the run "sent" on the server; its lease expires and
//     it is handed out again, and the agent, which already has it, only
//     re-acknowledges it.
//  2. Before a job starts, the marker running/<run> is written durably.
//     Its output is spooled to stream/<run>/ as it is read (output.go) and
//     streamed to the server while it runs (agent.output, stream.go); the
//     spool is fsynced before any of it is sent, so the server never holds
//     output the agent's disk does not.
//  3. When it ends, the final status, with the output bounded to its head
//     and tail, goes durably to outbox/<run>.xml; only then are the spool,
//     the marker and the queue file removed.
//  4. A report leaves the outbox only when the server has answered it
//     (accepted, or refused for good); its run id is first appended to
//     done.log so that a late re-delivery of the same run is recognised.
//
// Recovery at start therefore reads: a marker with no final report means the
// agent died while the job ran. That run is reported failed with reason
// "interrupted" and is NOT run again — the script may have had effects, and
// running a job twice is worse than telling the operator it was cut short.
// Its report carries the output the spool holds, bounded as any report's
// (the spool is the record: every byte once, whatever was streamed), and a
// line saying what happened. The spool stays until what the server has not
// accepted of it is streamed, before the report is delivered (stream.go).
// A queue file whose run already has a report is a leftover of step 3 and is
// removed, and so is a spool whose run has no final report; every other
// queue file runs normally.
//
// On a graceful stop (the context is cancelled) the running job's process
// group is killed and the run is reported failed, reason "interrupted",
// with the output it wrote until then, rather than left running: an
// orphaned job would finish with nobody to report it, and a restarted agent
// could not tell it from a crash anyway.
//
// A run the operator cancels (job.cancel) is learnt from agent.heartbeat's
// cancel list or from a report answered cancelled (see cancel.go): a running
// one has its process group stopped (SIGTERM, then SIGKILL) and is reported
// failed, reason "cancelled", with the output it wrote until then (the
// server keeps the run cancelled and takes the output); a queued one is
// dropped unrun and nothing is reported for it, done.log records it as
// "<run> cancelled" before its files are removed. A run the server declared
// lost (its agent was silent past the job's timeout and the server's grace)
// is learnt from agent.heartbeat's lost list and stopped or dropped the
// same way, but nothing is reported for it, running or not (the server
// would refuse it); done.log line "<run> lost".
//
// Output (docs/protocol.md, "Output"): stdout and stderr are read as one
// stream, made valid UTF-8 and XML-safe as they are read (jobxml.Sanitize's
// rules, also across a character split between two reads). A report
// carries the output bounded to Config.OutputLimit: its first and last
// half, with one marker line for what is between (runoutput). The agent's
// memory holds no more than that whatever the script writes, and its disk
// not much more: the spool keeps the head and the tail, and while the run
// is streamed what the server has not accepted yet, at most twice the
// limit (beyond it, the run is no longer streamed; its report carries the
// output).
//
// Every heartbeat of an agent that holds runs names the runs in its queue
// (the ones waiting and the one running): the server restarts the loss
// timer of those it still has as received, so a run waiting behind a long
// job is not declared lost while the agent lives (lease.go).
//
// Each round with the server (talk) heartbeats when one is due (once per
// poll interval, every few seconds while short jobs keep the agent busy),
// delivers the outbox, acknowledges pending runs and asks for jobs, in that
// order. When the outbox is empty and nothing waits for an ack — the idle
// poll — the heartbeat and agent.getJobs travel in one system.multicall
// request: the server answers each call on its own, a failed heartbeat is
// only logged as before, and a getJobs fault is handled as when it comes
// alone. Acks and reports stay requests of their own, in the order above.
//
// Facts (SPEC §12; package client/facts collects them): agent.register
// carries the machine's facts in its facts member, a struct of strings —
// the built-in ones (hostname, os, arch, kernel, os_id, os_version, cpus,
// memory_bytes, agent_version), those of StateDir/facts.d (*.facts files of
// KEY=VALUE lines, executables printing them, 10 s each) and Config.Facts
// (--fact). They are collected once at start, before the first
// registration, which carries them (a slow facts.d executable holds up the
// start by its time limit at most, once); then every 5 minutes by a
// goroutine of their own, which replaces the current facts when it is
// done. The loop never waits for an executable: it only compares hashes
// (facts.go). Each problem of a collection (a fact it could not read, a
// malformed line, a failing executable) is logged at warn level with its
// source, once while it lasts; the other facts are sent.
//
// The facts travel only when the server may hold others: the agent
// registers again, with them, when their hash (facts.Facts.Hash) differs
// from the hash of the facts it last sent (the machine changed), or from
// the facts_hash of a heartbeat answered since (the server holds none, or
// other ones). A heartbeat during a job records the hash, and the next
// round with the server acts on it. A server whose heartbeats keep naming
// other facts just after it was sent them gets them again at most every 5
// minutes, with a warning. An older server refuses the facts member (fault
// 400, unknown member "facts"): the agent registers again without it,
// says so once at info level, and neither sends nor collects facts again
// while it runs.
//
// Jobs run one at a time, highest priority first, then oldest job. The local
// queue holds at most Config.MaxJobs runs: work beyond that stays on the
// server, where operators can still see, cancel or expire it.
//
// State directory layout (0700):
//
//	agent.key        private key (0600)
//	agent.crt        self-signed certificate; its SHA-256 is the identity
//	ca.crt           the pinned server CA
//	agent.lock       flock held while an agent runs (one agent per directory)
//	facts.d/         the operator's: custom facts, *.facts files and executables (package client/facts)
//	queue/<run>.xml  acknowledged job documents waiting to run
//	running/<run>    start time of the run in progress (crash marker)
//	outbox/<run>.xml            final status report not yet answered by the server
//	outbox/<run>.running.xml    "running" report (best effort; dropped once the final one exists)
//	rejected/<run>.xml          reports the server refused as malformed (kept for the operator)
//	done.log         ids of recently delivered runs, to recognise re-deliveries;
//	                 "<run> cancelled" for a run the operator cancelled,
//	                 "<run> lost" for one the server declared lost
//	work/<run>/      the script file and working directory of the run in progress
//	stream/<run>/    the output spool of the run in progress, or of a run the agent
//	                 died in whose report waits in the outbox (output.go):
//	stream/<run>/<offset>   the output stream from byte <offset> on (valid UTF-8,
//	                        XML-safe), in segments of 1 MiB; those between the head
//	                        and the tail that the server has are deleted
//	stream/<run>/acked      how much of the stream the server has accepted (decimal;
//	                        missing: none), written atomically
package agent
