package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// RevokeToken marks a token revoked; the first revocation time is kept.
func (s *Store) RevokeToken(ctx context.Context, id int64) (db.Token, error) {
	var t db.Token
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE user_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, time.Now().UnixNano(), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbcore.NotFound("token", id)
		}
		t, err = dbcore.ScanToken(tx.QueryRowContext(ctx, `SELECT `+dbcore.TokenCols+` FROM user_tokens WHERE id = ?`, id))
		return err
	})
	if err != nil {
		return db.Token{}, fmt.Errorf("revoke token: %w", err)
	}
	return t, nil
}
