package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// CreateToken stores a token hash for a user.
func (s *Store) CreateToken(ctx context.Context, userID int64, name string, hash []byte) (db.Token, error) {
	t := db.Token{UserID: userID, Name: name, Hash: hash, CreatedAt: time.Now().UTC()}
	res, err := s.w.ExecContext(ctx, `INSERT INTO user_tokens (user_id, name, hash, created_at) VALUES (?, ?, ?, ?)`,
		userID, name, hash, t.CreatedAt.UnixNano())
	if err != nil {
		return db.Token{}, fmt.Errorf("create token for user %d: %w", userID, err)
	}
	t.ID, err = res.LastInsertId()
	return t, err
}

// TokenByID returns a token and its user.
func (s *Store) TokenByID(ctx context.Context, id int64) (db.Token, db.User, error) {
	var t db.Token
	var u db.User
	var tc, uc int64
	var revoked sql.NullInt64
	err := s.readRow(ctx, `
		SELECT t.id, t.user_id, t.name, t.hash, t.created_at, t.revoked_at, u.id, u.name, u.created_at
		FROM user_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?`, id).
		Scan(&t.ID, &t.UserID, &t.Name, &t.Hash, &tc, &revoked, &u.ID, &u.Name, &uc)
	if errors.Is(err, sql.ErrNoRows) {
		return t, u, dbcore.NotFound("token", id)
	} else if err != nil {
		return t, u, fmt.Errorf("token %d: %w", id, err)
	}
	t.CreatedAt, u.CreatedAt, t.Revoked = dbcore.Time(tc), dbcore.Time(uc), revoked.Valid
	return t, u, nil
}

// RevokeToken marks a token revoked; the first revocation time is kept.
func (s *Store) RevokeToken(ctx context.Context, id int64) (db.Token, error) {
	var t db.Token
	err := s.tx(ctx, func(tx *sql.Tx) error {
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
