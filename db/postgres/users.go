package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// RevokeToken marks a token revoked; the first revocation time is kept.
func (s *Store) RevokeToken(ctx context.Context, id int64) (db.Token, error) {
	t, err := dbcore.ScanToken(s.pool.QueryRow(ctx, `UPDATE user_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2
		RETURNING `+dbcore.TokenCols, time.Now().UnixNano(), id))
	if noRows(err) {
		return db.Token{}, fmt.Errorf("revoke token: %w", dbcore.NotFound("token", id))
	} else if err != nil {
		return db.Token{}, fmt.Errorf("revoke token: %w", err)
	}
	return t, nil
}
