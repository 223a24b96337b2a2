package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// touchClientsSQL takes a JSON array of [id, unix nanoseconds] pairs.
var touchClientsSQL = writeStatement(`UPDATE clients SET last_seen = j.at
	FROM (SELECT value->>0 AS id, value->>1 AS at FROM json_each(?1)) AS j
	WHERE clients.id = j.id AND clients.last_seen < j.at`)

// TouchClients records when clients were last heard from.
func (s *Store) TouchClients(ctx context.Context, seen map[int64]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	b := make([]byte, 0, 2+len(seen)*32)
	b = append(b, '[')
	for id, at := range seen {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, id, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, at.UnixNano(), 10)
		b = append(b, ']')
	}
	b = append(b, ']')
	err := s.cycleTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.txExec(ctx, tx, touchClientsSQL, string(b))
		return err
	})
	if err != nil {
		return fmt.Errorf("touch %d clients: %w", len(seen), err)
	}
	return nil
}

// isUnique reports a UNIQUE constraint failure.
func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
