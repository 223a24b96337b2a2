package dbcore

// Reading the events (db.EventStore). The triggers of the schema write
// them; what a reader needs is an id that never lets it miss one: SQLite's
// id (one writer: ids grow in commit order), PostgreSQL's seq, given by
// NumberEvents to committed events only, one numbering at a time.

import (
	"context"
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
	query := `SELECT ` + id + `, e.type, e.at, e.job_id, e.run_id, e.client_id, e.schedule_id, e.exit_code, e.detail, c.name, sc.name
		FROM events e LEFT JOIN clients c ON c.id = e.client_id LEFT JOIN schedules sc ON sc.id = e.schedule_id
		WHERE ` + id + ` IS NOT NULL` // PostgreSQL's events not numbered yet are not there for readers
	if f.Tail == 0 {
		query += ` AND ` + id + ` > ` + a.Bind(f.After)
	}
	if f.Until > 0 {
		query += ` AND ` + id + ` <= ` + a.Bind(f.Until)
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
		var at int64
		var job, run, client, sched, code *int64
		var cname, sname *string
		err := row.Scan(&e.ID, &e.Type, &at, &job, &run, &client, &sched, &code, &e.Detail, &cname, &sname)
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
		out = append(out, e)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	if f.Tail > 0 {
		slices.Reverse(out)
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
