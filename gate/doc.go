// Package gate is the job server's readers-writers gate (docs/protocol.md, "The gate and the blacklist").
//
// Every operation of the server — each XML-RPC method, each CLI command that
// touches the database — passes through one Gate before it runs. Each
// operation has a name ("job.submit", "db.reset", "agent.getJobs", …) and a
// Class:
//
//   - a Modifier runs only when nothing else runs;
//   - a NonModifier runs unless a modifier runs.
//
// # Why a FIFO queue
//
// RefactorErl's job server, which defined this rule, refused a blocked request
// with a bare "deny". Here a blocked operation waits, and it waits in one
// strictly first-in-first-out queue shared by both classes:
//
//   - A non-modifier that arrives while anything is queued queues too, even if
//     only non-modifiers are running and it could technically run. Without
//     that, a steady stream of overlapping readers (agents polling every few
//     seconds) would keep the gate busy forever and a waiting modifier
//     (job.submit, db.backup) would starve.
//   - When a modifier ends, the whole run of non-modifiers at the head of the
//     queue is admitted together, up to the next queued modifier. So readers
//     are not starved by a stream of modifiers either: each modifier lets
//     through everything that queued before the next one.
//
// An operation therefore waits at most for the operations that arrived
// before it. The wait is bounded by Options.MaxWait (and by the caller's
// context); a Request with NoWait is refused at once instead of queueing.
// Refusals are *BusyError values that name the operation holding the gate,
// who runs it and since when, so that an operator can find it in List and
// cancel it by id (Cancel).
//
// # Slots never leak
//
// Enter returns a *Ticket; the caller defers Ticket.Release, so the slot is
// given back on return and on panic. Release is idempotent. A waiter whose
// context ends (client disconnect) or whose wait limit passes leaves the
// queue, and the queue is re-evaluated at once so that those behind it can
// proceed. A waiter admitted at the very moment its context ends gives back
// what it was given. Cancel(id) cancels a running operation's context
// (Ticket.Context, cause ErrCancelled) or takes a waiting one out of the
// queue.
//
// # Cluster-wide gate
//
// With several daemons on one PostgreSQL database the gate is cluster-wide:
// Options.Cluster takes a ClusterLock (advisory locks, shared for
// non-modifiers and exclusive for modifiers) after local admission and
// releases it before the local slot; see ClusterLock for why that order
// cannot deadlock.
//
// An operation must not Enter the gate again while it holds a Ticket: like
// any fair readers-writers lock, a modifier queued in between would wait for
// the outer operation, which waits for the inner one.
package gate
