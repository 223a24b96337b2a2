package gate

import "context"

// ClusterLock is the cluster-wide half of the gate, for several daemons on
// one database (on PostgreSQL: a session advisory lock, shared for
// non-modifiers and exclusive for modifiers, which dies with its session).
//
// Lock takes the lock in the mode of class c and returns the function that
// gives it back (called exactly once). With noWait it does not wait: when the
// lock is held elsewhere it returns an error wrapping ErrClusterBusy, or a
// *BusyError naming the remote holder if it knows it. Otherwise it waits
// until it gets the lock or ctx is done (the caller's context, the Ticket's
// cancellation and the remaining Options.MaxWait all end ctx) and then
// returns an error; it must not leave the lock taken when it returns an error.
//
// # Ordering, and why it cannot deadlock
//
// Enter takes the ClusterLock AFTER local admission, and Release gives it back
// BEFORE the local slot. Every operation thus acquires in one fixed order,
// local slot then cluster lock, and releases in the reverse order, which is
// the classic lock-ordering argument: a wait-for cycle would need some
// operation that holds a cluster lock to wait for a local slot, and none
// does — it got its local slot first and does not give it up until its
// cluster lock is gone. Concretely:
//
//   - an operation waiting in the local queue holds nothing cluster-wide, so
//     it blocks no other server;
//   - an operation holding its local slot and waiting for the cluster lock
//     waits only for operations on other servers that already hold the
//     cluster lock; those need nothing more to finish, and when they end they
//     release the cluster lock first;
//   - the local gate acts as a per-server filter in front of the cluster
//     lock: on one server at most one modifier, or only non-modifiers, ever
//     ask for it at a time, so a server never asks for an exclusive lock
//     while holding a shared one itself (no upgrade deadlock).
//
// The wait for the cluster lock counts against the same Options.MaxWait as
// the local wait; while an operation waits for it, List shows it "waiting"
// and it holds its local slot (so the local queue behind it waits too, as it
// must: the lock is one gate seen from the whole cluster).
//
// A PostgreSQL implementation must take each lock on a session (connection)
// of its own: advisory locks held by one session never conflict with each
// other, so sharing a session between operations would let a modifier in
// beside readers of the same server.
type ClusterLock interface {
	Lock(ctx context.Context, c Class, noWait bool) (unlock func(), err error)
}
