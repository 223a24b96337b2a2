package dbcore

// Reading the events (db.EventStore). The triggers of the schema write
// them, and SQLite's dispatch statements a batch's in one row (schema 12:
// span events, the last with the row's id, batch the rest of each as
// JSON); what a reader needs is an id that never lets it miss one:
// SQLite's id (one writer: ids grow in commit order), PostgreSQL's seq,
// given by NumberEvents to committed events only, one numbering at a time.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/scirectl/scirectl/db"
)

// Events is Store.Events.
func (s Store) Events(ctx context.Context, f db.EventFilter) ([]db.Event, error) {
	d := s.db.Dialect()
	if d.NumberEvents != nil {
		if err := d.NumberEvents(ctx, s.db); err != nil {
			return nil, fmt.Errorf("events: number: %w", err)
		}
	}
	a := NewArgs(d)
	id := `e.` + d.EventID
	query := `SELECT ` + id + `, e.type, e.at, e.job_id, e.run_id, e.client_id, e.schedule_id, e.exit_code, e.detail, c.name, sc.name, e.span, e.batch
		FROM events e LEFT JOIN clients c ON c.id = e.client_id LEFT JOIN schedules sc ON sc.id = e.schedule_id
		WHERE ` + id + ` IS NOT NULL` // PostgreSQL's events not numbered yet are not there for readers
	if f.Tail == 0 {
		query += ` AND ` + id + ` > ` + a.Bind(f.After) // a row's last event is after
	}
	if f.Until > 0 {
		query += ` AND ` + id + ` - e.span < ` + a.Bind(f.Until) // its first is not after
	}
	if len(f.Types) > 0 {
		conds := make([]string, len(f.Types))
		for i, g := range f.Types {
			conds[i] = `e.type LIKE ` + a.Bind(globToLike(g)) + ` ESCAPE '\'`
		}
		query += ` AND (` + strings.Join(conds, ` OR `) + `)`
	}
	if f.Tail > 0 {
		query += ` ORDER BY ` + id + ` DESC LIMIT ` + a.Bind(f.Tail)
	} else {
		query += ` ORDER BY ` + id + ` LIMIT ` + a.Bind(limitOf(f.Limit))
	}
	out := []db.Event{}
	err := s.db.Reader().Each(ctx, query, a.List, func(row Scanner) error {
		var e db.Event
		var at, span int64
		var job, run, client, sched, code *int64
		var cname, sname, batch *string
		if err := row.Scan(&e.ID, &e.Type, &at, &job, &run, &client, &sched, &code, &e.Detail, &cname, &sname, &span, &batch); err != nil {
			return err
		}
		e.At = Time(at)
		e.JobID, e.RunID, e.ClientID, e.ScheduleID = deref(job), deref(run), deref(client), deref(sched)
		if code != nil {
			c := int(*code)
			e.ExitCode = &c
		}
		if cname != nil {
			e.Client = *cname
		}
		if sname != nil {
			e.Schedule = *sname
		}
		if batch == nil {
			out = append(out, e)
			return nil
		}
		var err error
		if out, err = expandBatch(out, e, span, *batch, f); err != nil {
			return fmt.Errorf("event %d: %w", e.ID, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	if f.Tail > 0 {
		// Rows were read newest first, each row's events oldest first.
		slices.SortFunc(out, func(a, b db.Event) int { return cmp.Compare(a.ID, b.ID) })
		if len(out) > f.Tail {
			out = out[len(out)-f.Tail:]
		}
		return out, nil
	}
	if len(out) > limitOf(f.Limit) {
		out = out[:limitOf(f.Limit)]
	}
	return out, nil
}

// BatchEvent is one event of a row that holds a batch's (schema 12): its
// run, job, exit code and detail; the row gives the type, time and client.
type BatchEvent struct {
	Run    int64  `json:"r,omitempty"`
	Job    int64  `json:"j,omitempty"`
	Exit   *int   `json:"x,omitempty"`
	Detail string `json:"d,omitempty"`
}

// expandBatch appends the events of a row holding span events, the last
// with id e.ID, that the filter's ids let through.
func expandBatch(out []db.Event, e db.Event, span int64, batch string, f db.EventFilter) ([]db.Event, error) {
	var evs []BatchEvent
	if err := json.Unmarshal([]byte(batch), &evs); err != nil {
		return out, fmt.Errorf("batch: %w", err)
	}
	if int64(len(evs)) != span {
		return out, fmt.Errorf("batch of %d events, span %d", len(evs), span)
	}
	first := e.ID - span + 1
	for i, b := range evs {
		x := e
		x.ID = first + int64(i)
		if f.Tail == 0 && x.ID <= f.After || f.Until > 0 && x.ID > f.Until {
			continue
		}
		x.RunID, x.JobID, x.ExitCode, x.Detail = b.Run, b.Job, b.Exit, b.Detail
		out = append(out, x)
	}
	return out, nil
}

// LastEventID is Store.LastEventID.
func (s Store) LastEventID(ctx context.Context) (int64, error) {
	d := s.db.Dialect()
	if d.NumberEvents != nil {
		if err := d.NumberEvents(ctx, s.db); err != nil {
			return 0, fmt.Errorf("last event: number: %w", err)
		}
	}
	var id *int64
	if err := s.db.Reader().QueryRow(ctx, `SELECT max(`+d.EventID+`) FROM events`).Scan(&id); err != nil {
		return 0, fmt.Errorf("last event: %w", err)
	}
	return deref(id), nil
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// globToLike turns a glob on event types (* and ?) into a LIKE pattern
// with \ as its escape.
func globToLike(g string) string {
	var b strings.Builder
	for _, r := range g {
		switch r {
		case '*':
			b.WriteByte('%')
		case '?':
			b.WriteByte('_')
		case '%', '_', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
