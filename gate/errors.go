package gate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrCancelled is the cause (context.Cause) of a Ticket's context cancelled
// by Gate.Cancel, and is wrapped in the error Enter returns for a waiting
// operation taken out of the queue by Gate.Cancel. It wraps context.Canceled.
var ErrCancelled = fmt.Errorf("cancelled by an operator (ops cancel): %w", context.Canceled)

// ErrClusterBusy is what a ClusterLock returns (possibly wrapped) when asked
// not to wait and the cluster-wide lock is held on another server. Enter
// turns it into a *BusyError with Cluster set.
var ErrClusterBusy = errors.New("gate: the cluster-wide lock is held by another server")

// BusyError is the refusal of an operation that asked not to wait
// (Request.NoWait) or whose wait limit (Options.MaxWait) passed. It maps to
// XML-RPC fault 423.
type BusyError struct {
	Op string // operation that was refused
	// Holder is the operation that blocks it: the running modifier; when
	// only non-modifiers run and a modifier was refused, the oldest running
	// operation; when a non-modifier was refused because a modifier queued
	// before it (FIFO), that waiting modifier (State "waiting"). Zero when
	// the holder is on another server (Cluster) and the ClusterLock could not
	// name it.
	Holder OpInfo
	Waited time.Duration // how long the operation waited before refusal
	NoWait bool          // refused at once because the request asked not to wait
	// Cluster is set when the cluster-wide lock (Options.Cluster), not the
	// local gate, refused the operation.
	Cluster bool
}

// Error reads, for example:
//
//	busy: "db.backup" (modifier, op 7) run by alice since 2026-11-22T10:00:00Z holds the gate; "job.submit" not started (waited 2s)
func (e *BusyError) Error() string {
	var b strings.Builder
	b.WriteString("busy: ")
	h := e.Holder
	switch {
	case h.ID == 0 && e.Cluster:
		b.WriteString("an operation on another server holds the cluster-wide gate")
	case h.ID == 0:
		b.WriteString("the gate is held")
	default:
		b.WriteString(strconv.Quote(h.Name))
		b.WriteString(" (")
		b.WriteString(h.Class.String())
		b.WriteString(", op ")
		b.WriteString(strconv.FormatUint(h.ID, 10))
		b.WriteString(") ")
		user := h.User
		if user == "" {
			user = "(unknown)"
		}
		since := h.Since.UTC().Format(time.RFC3339)
		switch {
		case h.State == StateWaiting:
			b.WriteString("requested by " + user + " at " + since + " is waiting ahead of it")
		case h.Class == Modifier:
			b.WriteString("run by " + user + " since " + since + " holds the gate")
		default:
			b.WriteString("run by " + user + " since " + since + " is running")
		}
		if e.Cluster {
			b.WriteString(" on another server")
		}
	}
	b.WriteString("; ")
	b.WriteString(strconv.Quote(e.Op))
	b.WriteString(" not started")
	if e.NoWait {
		b.WriteString(" (no-wait)")
	} else {
		b.WriteString(" (waited " + e.Waited.Round(time.Millisecond).String() + ")")
	}
	return b.String()
}

func notStarted(name string, err error) error {
	return fmt.Errorf("gate: %q not started: %w", name, err)
}
