package dbcore

// Webhooks and their queues (db.WebhookStore), once for both drivers. A
// webhook's queue is its row: the cursor, the retries of the next event,
// and the lease that makes its delivery one daemon's at a time. Taking a
// lease is a conditional UPDATE (on PostgreSQL after a SKIP LOCKED pick,
// so that daemons claiming together take different webhooks); each change
// under a lease is an UPDATE conditional on the owner still holding it,
// in the transaction that records the attempt.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scirectl/scirectl/db"
)

// MaxDeliveriesKept is about how many attempts per webhook the history
// keeps: past it, the oldest go (now and then, as attempts are recorded).
const MaxDeliveriesKept = 1000

// errLeaseLost rolls back a change under a lease the caller no longer
// holds.
var errLeaseLost = errors.New("lease lost")

const webhookColumns = `w.id, w.url, w.events, w.secret, w.created_by, w.created_at, w.cursor_id, w.attempts, w.next_attempt_at,
	w.first_failure_at, w.lease_owner, w.lease_until,
	d.id, d.event_id, d.event_type, d.attempt, d.at, d.status_code, d.error, d.duration, d.outcome, d.server_id`

const webhookFrom = ` FROM webhooks w LEFT JOIN webhook_deliveries d
	ON d.id = (SELECT max(x.id) FROM webhook_deliveries x WHERE x.webhook_id = w.id)`

// paramRx finds the $n placeholders numbered queries are written with.
var paramRx = regexp.MustCompile(`\$([1-9][0-9]*)`)

// numbered writes a query's $1, $2 … placeholders in d's form.
func numbered(d *Dialect, query string) string {
	if d.Param == "$" {
		return query
	}
	return paramRx.ReplaceAllString(query, d.Param+"$1")
}

func scanWebhook(row Scanner) (db.Webhook, error) {
	var w db.Webhook
	var events string
	var created, next int64
	var attempts int64
	var firstFailure, leaseUntil *int64
	var owner *string
	var did, devent, dattempt, dat, dstatus, dduration, dserver *int64
	var dtype, derror, doutcome *string
	err := row.Scan(&w.ID, &w.URL, &events, &w.Secret, &w.CreatedBy, &created, &w.Cursor, &attempts, &next,
		&firstFailure, &owner, &leaseUntil,
		&did, &devent, &dtype, &dattempt, &dat, &dstatus, &derror, &dduration, &doutcome, &dserver)
	w.Events = globList(events)
	w.CreatedAt, w.NextAttempt = Time(created), Time(next)
	w.Attempts = int(attempts)
	w.FirstFailure, w.LeaseUntil = NullTime(firstFailure), NullTime(leaseUntil)
	w.After = w.Cursor
	if owner != nil {
		w.LeaseOwner = *owner
	}
	if did != nil {
		w.Last = &db.Delivery{ID: *did, WebhookID: w.ID, NewDelivery: db.NewDelivery{EventID: deref(devent), EventType: *dtype,
			Attempt: int(deref(dattempt)), At: Time(deref(dat)), Status: int(deref(dstatus)), Error: *derror,
			Duration: time.Duration(deref(dduration)), Outcome: *doutcome, ServerID: deref(dserver)}}
	}
	return w, err
}

// stored is a time as the webhook columns hold it: 0 for none.
func stored(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// globList reads the events column: globs joined by commas, or empty for
// none.
func globList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// CreateWebhook is Store.CreateWebhook.
func (s Store) CreateWebhook(ctx context.Context, nw db.NewWebhook) (db.Webhook, error) {
	for _, v := range append([]string{nw.URL, nw.CreatedBy}, nw.Events...) {
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return db.Webhook{}, fmt.Errorf("create webhook: not valid UTF-8 text: %w", db.ErrInvalid)
		}
	}
	for _, g := range nw.Events {
		if g == "" || strings.Contains(g, ",") {
			return db.Webhook{}, fmt.Errorf("create webhook: event glob %q: %w", g, db.ErrInvalid)
		}
	}
	if nw.URL == "" {
		return db.Webhook{}, fmt.Errorf("create webhook: no URL: %w", db.ErrInvalid)
	}
	if nw.CreatedAt.IsZero() {
		nw.CreatedAt = time.Now().UTC()
	}
	var secret any
	if nw.Secret != nil {
		secret = nw.Secret
	}
	d := s.db.Dialect()
	var id int64
	err := s.db.Write(ctx, func(q Querier) (err error) {
		id, err = q.Insert(ctx, `INSERT INTO webhooks (url, events, secret, created_by, created_at, cursor_id) VALUES (`+placeholders(d, 6)+`)`,
			nw.URL, strings.Join(nw.Events, ","), secret, nw.CreatedBy, nw.CreatedAt.UnixNano(), nw.After)
		return err
	})
	if err != nil {
		return db.Webhook{}, fmt.Errorf("create webhook: %w", d.Classify(err))
	}
	return s.Webhook(ctx, id)
}

// Webhook is Store.Webhook.
func (s Store) Webhook(ctx context.Context, id int64) (db.Webhook, error) {
	w, err := scanWebhook(s.db.Reader().QueryRow(ctx, `SELECT `+webhookColumns+webhookFrom+` WHERE w.id = `+s.db.Dialect().P(1), id))
	if NoRows(err) {
		return db.Webhook{}, NotFound("webhook", id)
	} else if err != nil {
		return db.Webhook{}, fmt.Errorf("webhook %d: %w", id, err)
	}
	return w, nil
}

// ListWebhooks is Store.ListWebhooks.
func (s Store) ListWebhooks(ctx context.Context) ([]db.Webhook, error) {
	out := []db.Webhook{}
	err := s.db.Reader().Each(ctx, `SELECT `+webhookColumns+webhookFrom+` ORDER BY w.id`, nil, func(row Scanner) error {
		w, err := scanWebhook(row)
		out = append(out, w)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return out, nil
}

// DeleteWebhook is Store.DeleteWebhook.
func (s Store) DeleteWebhook(ctx context.Context, id int64) (db.Webhook, error) {
	d := s.db.Dialect()
	var w db.Webhook
	err := s.db.Write(ctx, func(q Querier) (err error) {
		w, err = scanWebhook(q.QueryRow(ctx, `SELECT `+webhookColumns+webhookFrom+` WHERE w.id = `+d.P(1), id))
		if NoRows(err) {
			return NotFound("webhook", id)
		} else if err != nil {
			return err
		}
		_, err = q.Exec(ctx, `DELETE FROM webhooks WHERE id = `+d.P(1), id)
		return err
	})
	if err != nil {
		return db.Webhook{}, fmt.Errorf("delete webhook: %w", d.Classify(err))
	}
	return w, nil
}

// ClaimWebhooks is Store.ClaimWebhooks.
func (s Store) ClaimWebhooks(ctx context.Context, c db.WebhookClaim) ([]db.Webhook, error) {
	if c.Owner == "" || c.Lease <= 0 || c.Max < 1 {
		return nil, fmt.Errorf("claim webhooks: owner %q, lease %v, max %d: %w", c.Owner, c.Lease, c.Max, db.ErrInvalid)
	}
	d := s.db.Dialect()
	at, until := c.At.UnixNano(), c.At.Add(c.Lease).UnixNano()
	var out []db.Webhook
	err := s.db.Write(ctx, func(q Querier) error {
		out = nil
		// Those waiting longest first; on PostgreSQL the rows another
		// claim is taking are passed over.
		ids, err := IDs(ctx, q, numbered(d, `SELECT id FROM webhooks
			WHERE cursor_id < $1 AND next_attempt_at <= $2 AND (lease_owner IS NULL OR lease_until < $2)
			ORDER BY next_attempt_at, id LIMIT $3`)+d.SkipLocked, c.Below, at, c.Max)
		if err != nil || len(ids) == 0 {
			return err
		}
		var taken []int64
		for _, id := range ids {
			n, err := q.Exec(ctx, numbered(d, `UPDATE webhooks SET lease_owner = $1, lease_until = $2
				WHERE id = $3 AND (lease_owner IS NULL OR lease_until < $4)`), c.Owner, until, id, at)
			if err != nil {
				return err
			}
			if n == 1 {
				taken = append(taken, id)
			}
		}
		if len(taken) == 0 {
			return nil
		}
		a := NewArgs(d)
		return q.Each(ctx, `SELECT `+webhookColumns+webhookFrom+` WHERE `+d.IDIn(a, "w.id", taken)+` ORDER BY w.next_attempt_at, w.id`, a.List,
			func(row Scanner) error {
				w, err := scanWebhook(row)
				out = append(out, w)
				return err
			})
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhooks: %w", d.Classify(err))
	}
	return out, nil
}

// AdvanceWebhook is Store.AdvanceWebhook.
func (s Store) AdvanceWebhook(ctx context.Context, a db.WebhookAdvance) error {
	d := s.db.Dialect()
	var owner, until any
	if !a.LeaseUntil.IsZero() {
		owner, until = a.Owner, a.LeaseUntil.UnixNano()
	}
	err := s.db.Write(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, numbered(d, `UPDATE webhooks SET cursor_id = $1, attempts = 0, first_failure_at = NULL, next_attempt_at = $7,
			lease_owner = $2, lease_until = $3 WHERE id = $4 AND lease_owner = $5 AND cursor_id = $6`),
			a.To, owner, until, a.ID, a.Owner, a.From, stored(a.At))
		if err != nil {
			return err
		}
		if n == 0 {
			return errLeaseLost
		}
		if a.Delivery != nil {
			return insertDelivery(ctx, q, d, a.ID, *a.Delivery)
		}
		return nil
	})
	if errors.Is(err, errLeaseLost) {
		return fmt.Errorf("advance webhook %d: its lease is not %s's any more, or its cursor moved: %w", a.ID, a.Owner, db.ErrConflict)
	} else if err != nil {
		return fmt.Errorf("advance webhook %d: %w", a.ID, d.Classify(err))
	}
	return nil
}

// RetryWebhook is Store.RetryWebhook.
func (s Store) RetryWebhook(ctx context.Context, r db.WebhookRetry) error {
	d := s.db.Dialect()
	err := s.db.Write(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, numbered(d, `UPDATE webhooks SET attempts = attempts + 1, first_failure_at = COALESCE(first_failure_at, $1),
			next_attempt_at = $2, lease_owner = NULL, lease_until = NULL WHERE id = $3 AND lease_owner = $4`),
			stored(r.Delivery.At), stored(r.Next), r.ID, r.Owner)
		if err != nil {
			return err
		}
		if n == 0 {
			return errLeaseLost
		}
		return insertDelivery(ctx, q, d, r.ID, r.Delivery)
	})
	if errors.Is(err, errLeaseLost) {
		return fmt.Errorf("retry webhook %d: its lease is not %s's any more: %w", r.ID, r.Owner, db.ErrConflict)
	} else if err != nil {
		return fmt.Errorf("retry webhook %d: %w", r.ID, d.Classify(err))
	}
	return nil
}

// ReleaseWebhook is Store.ReleaseWebhook.
func (s Store) ReleaseWebhook(ctx context.Context, id int64, owner string) error {
	d := s.db.Dialect()
	err := s.db.Write(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, numbered(d, `UPDATE webhooks SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2`), id, owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("release webhook %d: %w", id, d.Classify(err))
	}
	return nil
}

// insertDelivery records an attempt, and now and then trims the
// webhook's history to about MaxDeliveriesKept.
func insertDelivery(ctx context.Context, q Querier, d *Dialect, webhookID int64, nd db.NewDelivery) error {
	switch nd.Outcome {
	case db.DeliveryDelivered, db.DeliveryRetrying, db.DeliveryFailed:
	default:
		return fmt.Errorf("delivery outcome %q: %w", nd.Outcome, db.ErrInvalid)
	}
	id, err := q.Insert(ctx, `INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, attempt, at, status_code, error, duration, outcome, server_id)
		VALUES (`+placeholders(d, 10)+`)`, webhookID, nd.EventID, d.Storable(nd.EventType), nd.Attempt, stored(nd.At), nd.Status,
		d.Storable(nd.Error), int64(nd.Duration), nd.Outcome, NullID(nd.ServerID))
	if err != nil {
		return fmt.Errorf("record the delivery: %w", err)
	}
	if id%64 == 0 {
		_, err = q.Exec(ctx, numbered(d, `DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND id < (SELECT x.id FROM webhook_deliveries x
			WHERE x.webhook_id = $1 ORDER BY x.id DESC LIMIT 1 OFFSET $2)`), webhookID, MaxDeliveriesKept-1)
	}
	return err
}

// WebhookDeliveries is Store.WebhookDeliveries.
func (s Store) WebhookDeliveries(ctx context.Context, webhookID int64, f db.DeliveryFilter) ([]db.Delivery, error) {
	a := NewArgs(s.db.Dialect())
	query := `SELECT id, webhook_id, event_id, event_type, attempt, at, status_code, error, duration, outcome, server_id
		FROM webhook_deliveries WHERE webhook_id = ` + a.Bind(webhookID)
	if f.BeforeID > 0 {
		query += ` AND id < ` + a.Bind(f.BeforeID)
	}
	query += ` ORDER BY id DESC LIMIT ` + a.Bind(limitOf(f.Limit))
	out := []db.Delivery{}
	err := s.db.Reader().Each(ctx, query, a.List, func(row Scanner) error {
		var dl db.Delivery
		var attempt, at, status, duration int64
		var server *int64
		err := row.Scan(&dl.ID, &dl.WebhookID, &dl.EventID, &dl.EventType, &attempt, &at, &status, &dl.Error, &duration, &dl.Outcome, &server)
		dl.Attempt, dl.At, dl.Status, dl.Duration, dl.ServerID = int(attempt), Time(at), int(status), time.Duration(duration), deref(server)
		out = append(out, dl)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("webhook %d deliveries: %w", webhookID, err)
	}
	return out, nil
}
