package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/scirectl/scirectl/db"
)

// EnsureUser returns the named user, creating it if needed.
func (s *Store) EnsureUser(ctx context.Context, name string) (db.User, error) {
	if name == "" {
		return db.User{}, fmt.Errorf("ensure user: empty name: %w", db.ErrInvalid)
	}
	var u db.User
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`,
			name, time.Now().UnixNano())
		if err != nil {
			return err
		}
		var created int64
		err = tx.QueryRowContext(ctx, `SELECT id, name, created_at FROM users WHERE name = ?`, name).Scan(&u.ID, &u.Name, &created)
		u.CreatedAt = ti(created)
		return err
	})
	if err != nil {
		return db.User{}, fmt.Errorf("ensure user %q: %w", name, err)
	}
	return u, nil
}

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
	err := s.r.QueryRowContext(ctx, `
		SELECT t.id, t.user_id, t.name, t.hash, t.created_at, t.revoked_at, u.id, u.name, u.created_at
		FROM user_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?`, id).
		Scan(&t.ID, &t.UserID, &t.Name, &t.Hash, &tc, &revoked, &u.ID, &u.Name, &uc)
	if errors.Is(err, sql.ErrNoRows) {
		return t, u, notFound("token", id)
	} else if err != nil {
		return t, u, fmt.Errorf("token %d: %w", id, err)
	}
	t.CreatedAt, u.CreatedAt, t.Revoked = ti(tc), ti(uc), revoked.Valid
	return t, u, nil
}
