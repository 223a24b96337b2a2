package dbcore

// Live output (docs/protocol.md, "Output"): the chunks an agent streams
// while a run goes on, stored contiguously and pruned to the bound, and
// read back whole or from an offset. The rules of the bound and of reading
// are package runoutput's; this is the SQL both drivers share.

import (
	"context"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runoutput"
	"github.com/scirectl/scirectl/runstate"
)

// NoteNotStreaming is the note of a chunk whose run takes no more output.
const NoteNotStreaming = "the run takes no streamed output: it is not out with its agent"

// streamRun is a run as AppendOutput reads it.
type streamRun struct {
	owner     int64
	state     runstate.State
	size      int64
	hasOutput bool
}

// takesOutput says whether chunks of a run in state st are stored: while
// it is out, and once cancelled until its agent's final report stored the
// output it wrote until it stopped.
func (r streamRun) takesOutput() bool {
	return r.state.Out() || r.state == runstate.Cancelled && !r.hasOutput
}

// AppendOutput is Store.AppendOutput.
func AppendOutput(ctx context.Context, w DB, clientID int64, chunks []db.OutputChunk, max int) ([]db.ChunkResult, error) {
	d := w.Dialect()
	out := make([]db.ChunkResult, len(chunks))
	if len(chunks) == 0 {
		return out, nil
	}
	ids := make([]int64, 0, len(chunks))
	for _, c := range chunks {
		ids = append(ids, c.RunID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	err := w.Write(ctx, func(q Querier) error {
		runs := make(map[int64]*streamRun, len(ids))
		a := NewArgs(d)
		// Locked in id order: two calls for the same runs (an agent's
		// retry) take turns.
		err := q.Each(ctx, `SELECT id, client_id, state, output_size, output <> '' FROM runs WHERE `+d.IDIn(a, "id", ids)+` ORDER BY id`+d.ForUpdate,
			a.List, func(row Scanner) error {
				var id int64
				var r streamRun
				if err := row.Scan(&id, &r.owner, &r.state, &r.size, &r.hasOutput); err != nil {
					return err
				}
				runs[id] = &r
				return nil
			})
		if err != nil {
			return err
		}
		for _, c := range chunks {
			r, ok := runs[c.RunID]
			if !ok {
				return NotFound("run", c.RunID)
			}
			if r.owner != clientID {
				return fmt.Errorf("run %d was not sent to this client: %w", c.RunID, db.ErrConflict)
			}
		}
		touched := map[int64]bool{}
		for i, c := range chunks {
			r := runs[c.RunID]
			res := &out[i]
			res.RunID = c.RunID
			end := c.Offset + int64(len(c.Data))
			switch {
			case !r.takesOutput():
				res.Stop, res.Note = true, NoteNotStreaming
			case c.Offset > r.size:
				res.Note = fmt.Sprintf("chunk starts at %d, the output has %d bytes: send from %d", c.Offset, r.size, r.size)
			case end <= r.size:
				res.Accepted = true // a resend
			default:
				data := c.Data[r.size-c.Offset:]
				if !utf8.ValidString(data) {
					res.Note = fmt.Sprintf("the new part of the chunk from %d is not valid UTF-8: send from %d", r.size, r.size)
					break
				}
				if _, err := q.Exec(ctx, `INSERT INTO run_output (run_id, off, len, data) VALUES (`+placeholders(d, 4)+`)`,
					c.RunID, r.size, int64(len(data)), d.Storable(data)); err != nil {
					return err
				}
				r.size += int64(len(data))
				touched[c.RunID] = true
				res.Accepted = true
			}
			res.Offset = r.size
		}
		for _, id := range ids {
			if !touched[id] {
				continue
			}
			size := runs[id].size
			from, to := runoutput.Dropped(size, max)
			if from < to {
				if _, err := q.Exec(ctx, `DELETE FROM run_output WHERE run_id = `+d.P(1)+` AND off >= `+d.P(2)+` AND off + len <= `+d.P(3),
					id, from, to); err != nil {
					return err
				}
			}
			if _, err := q.Exec(ctx, `UPDATE runs SET output_size = `+d.P(1)+` WHERE id = `+d.P(2), size, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("append output for client %d: %w", clientID, d.Classify(err))
	}
	return out, nil
}

// RunOutputs is Store.RunOutputs.
func RunOutputs(ctx context.Context, w DB, jobID int64, since map[int64]int64, max int) ([]db.Run, error) {
	d := w.Dialect()
	var runs []db.Run
	err := w.Read(ctx, func(q Querier) error {
		if ok, err := Exists(ctx, q, `SELECT 1 FROM jobs WHERE id = `+d.P(1), jobID); err != nil {
			return err
		} else if !ok {
			return NotFound("job", jobID)
		}
		err := q.Each(ctx, `SELECT `+RunCols+` FROM runs r JOIN clients c ON c.id = r.client_id WHERE r.job_id = `+d.P(1)+` ORDER BY r.id`,
			[]any{jobID}, func(row Scanner) error {
				r, err := ScanRun(row)
				runs = append(runs, r)
				return err
			})
		if err != nil {
			return err
		}
		for i := range runs {
			if err := readOutput(ctx, q, d, &runs[i], since, max); err != nil {
				return fmt.Errorf("output of run %d: %w", runs[i].ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("output of job %d: %w", jobID, d.Classify(err))
	}
	return runs, nil
}

// readOutput fills in r's output as a reader sees it: the final output
// stored with its report, else the chunks streamed so far; all of it, or
// what follows since[r.ID].
func readOutput(ctx context.Context, q Querier, d *Dialect, r *db.Run, since map[int64]int64, max int) error {
	from, follow := since[r.ID]
	if r.Output != "" || r.OutputSize == 0 {
		// The final output (or none): its stream coordinates are its
		// head, the bytes its marker stands for, and its tail.
		k := runoutput.Parse(r.Output)
		r.OutputSize, r.OutputOmitted, r.OutputTruncated = k.Size(), k.Omitted, r.OutputTruncated || k.Truncated()
		if follow {
			r.Output = k.Since(from)
		}
		return nil
	}
	// Live: what the chunks hold. A follower reads only the chunks that
	// end after its offset; nothing at all when it has everything.
	if follow && from >= r.OutputSize {
		r.Output = ""
		return nil
	}
	var chunks []runoutput.Chunk
	lo := int64(-1)
	if follow {
		lo = from
	}
	err := q.Each(ctx, `SELECT off, data FROM run_output WHERE run_id = `+d.P(1)+` AND off + len > `+d.P(2)+` ORDER BY off`,
		[]any{r.ID, lo}, func(row Scanner) error {
			var c runoutput.Chunk
			err := row.Scan(&c.Offset, &c.Data)
			chunks = append(chunks, c)
			return err
		})
	if err != nil {
		return err
	}
	if follow {
		// Only the chunks after the offset were read: how much the
		// whole stream omits is not known here, only that it is over
		// the bound.
		r.Output, r.OutputTruncated = runoutput.SinceChunks(chunks, from), r.OutputSize > int64(max)
		return nil
	}
	k := runoutput.FromChunks(chunks, r.OutputSize).Rebound(max)
	r.Output, r.OutputOmitted, r.OutputTruncated = k.String(), k.Omitted, k.Truncated()
	return nil
}

// KeptOutput is the output of a final report as the store keeps it: the
// agent's rendering (head, marker, tail, bounded by the agent) bounded
// again to the server's max, with the bytes its marker stands for.
func KeptOutput(output string, max int) (rendered string, omitted int64, truncated bool) {
	k := runoutput.Parse(output).Rebound(max)
	return k.String(), k.Omitted, k.Truncated()
}

// KeepCancelledOutput stores, for the reports of a call whose runs an
// operator had cancelled before they ended (runs: their states when the
// call read them), the output the agent reports with its final status:
// what the script wrote until the agent stopped it. The run stays
// cancelled; an output stored before is kept.
func KeepCancelledOutput(ctx context.Context, q Querier, d *Dialect, reports []db.Report, runs map[int64]OwnedRun) error {
	for _, r := range reports {
		if r.Output == "" || r.State == runstate.Running || runs[r.RunID].State != runstate.Cancelled {
			continue
		}
		if _, err := q.Exec(ctx, `UPDATE runs SET output = `+d.P(1)+`, output_truncated = `+d.P(2)+`
			WHERE id = `+d.P(3)+` AND state = 'cancelled' AND output = ''`, d.Storable(r.Output), r.Truncated, r.RunID); err != nil {
			return fmt.Errorf("keep the output of cancelled run %d: %w", r.RunID, err)
		}
	}
	return nil
}
