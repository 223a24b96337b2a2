package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// CreateToken stores a token hash for a user.
func (s *Store) CreateToken(ctx context.Context, userID int64, name string, hash []byte) (db.Token, error) {
	t := db.Token{UserID: userID, Name: name, Hash: hash, CreatedAt: time.Now().UTC()}
	err := s.pool.QueryRow(ctx, `INSERT INTO user_tokens (user_id, name, hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
		userID, name, hash, t.CreatedAt.UnixNano()).Scan(&t.ID)
	if pgCode(err) == codeForeignKeyViolation {
		return db.Token{}, fmt.Errorf("create token for user %d: %w", userID, dbcore.NotFound("user", userID))
	} else if err != nil {
		return db.Token{}, fmt.Errorf("create token for user %d: %w", userID, classify(err))
	}
	return t, nil
}

// TokenByID returns a token and its user.
func (s *Store) TokenByID(ctx context.Context, id int64) (db.Token, db.User, error) {
	var t db.Token
	var u db.User
	var tc, uc int64
	var revoked *int64
	err := s.pool.QueryRow(ctx, `
		SELECT t.id, t.user_id, t.name, t.hash, t.created_at, t.revoked_at, u.id, u.name, u.created_at
		FROM user_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1`, id).
		Scan(&t.ID, &t.UserID, &t.Name, &t.Hash, &tc, &revoked, &u.ID, &u.Name, &uc)
	if noRows(err) {
		return t, u, dbcore.NotFound("token", id)
	} else if err != nil {
		return t, u, fmt.Errorf("token %d: %w", id, err)
	}
	t.CreatedAt, u.CreatedAt, t.Revoked = dbcore.Time(tc), dbcore.Time(uc), revoked != nil
	return t, u, nil
}

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
