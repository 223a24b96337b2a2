package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
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
		u.CreatedAt = dbcore.Time(created)
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

// builtinAdmin is the user that exists from first start and cannot be
// deleted (acl.Admin; db/sqlite cannot import acl, which imports db).
const builtinAdmin = "admin"

// CreateUser adds a user; a taken name is ErrConflict.
func (s *Store) CreateUser(ctx context.Context, name string) (db.User, error) {
	if err := db.CheckNewName("user", name); err != nil {
		return db.User{}, fmt.Errorf("create user: %w", err)
	}
	u := db.User{Name: name, CreatedAt: time.Now().UTC()}
	res, err := s.w.ExecContext(ctx, `INSERT INTO users (name, created_at) VALUES (?, ?)`, name, u.CreatedAt.UnixNano())
	if isUnique(err) {
		return db.User{}, fmt.Errorf("create user %q: the name is taken: %w", name, db.ErrConflict)
	} else if err != nil {
		return db.User{}, fmt.Errorf("create user %q: %w", name, err)
	}
	if u.ID, err = res.LastInsertId(); err != nil {
		return db.User{}, fmt.Errorf("create user %q: %w", name, err)
	}
	return u, nil
}

// UserByName returns a user.
func (s *Store) UserByName(ctx context.Context, name string) (db.User, error) {
	var u db.User
	var created int64
	err := s.readRow(ctx, `SELECT id, name, created_at FROM users WHERE name = ?`, name).Scan(&u.ID, &u.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return u, dbcore.NotFound("user", strconv.Quote(name))
	} else if err != nil {
		return u, fmt.Errorf("user %q: %w", name, err)
	}
	u.CreatedAt = dbcore.Time(created)
	return u, nil
}

// ListUsers lists users by name.
func (s *Store) ListUsers(ctx context.Context) ([]db.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, name, created_at FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []db.User
	for rows.Next() {
		var u db.User
		var created int64
		if err := rows.Scan(&u.ID, &u.Name, &created); err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		u.CreatedAt = dbcore.Time(created)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// DeleteUser removes a user; its tokens and group memberships go with it
// (foreign keys cascade), and so do the ACL rules whose subject it is, in
// the same transaction, returned as they were: rules name a user by name,
// and a user created later under the same name must not inherit them. The
// built-in admin is ErrInvalid.
func (s *Store) DeleteUser(ctx context.Context, name string) ([]db.ACLRule, error) {
	if name == builtinAdmin {
		return nil, fmt.Errorf("delete user %q: admin is built in: %w", name, db.ErrInvalid)
	}
	var removed []db.ACLRule
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE name = ?`, name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return dbcore.NotFound("user", strconv.Quote(name))
		} else if err != nil {
			return err
		}
		if removed, err = removeRules(ctx, tx, `subject_kind = 'user' AND subject = ?`, name); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete user: %w", err)
	}
	return removed, nil
}

// ListTokens lists a user's tokens, oldest first, without their hashes.
func (s *Store) ListTokens(ctx context.Context, userID int64) ([]db.Token, error) {
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list tokens of user %d: %w", userID, err)
	}
	defer tx.Rollback()
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = ?`, userID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dbcore.NotFound("user", userID)
	} else if err != nil {
		return nil, fmt.Errorf("list tokens of user %d: %w", userID, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, user_id, name, created_at, revoked_at FROM user_tokens WHERE user_id = ? ORDER BY id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list tokens of user %d: %w", userID, err)
	}
	defer rows.Close()
	var out []db.Token
	for rows.Next() {
		var t db.Token
		var created int64
		var revoked sql.NullInt64
		if err := rows.Scan(&t.ID, &t.UserID, &t.Name, &created, &revoked); err != nil {
			return nil, fmt.Errorf("list tokens of user %d: %w", userID, err)
		}
		t.CreatedAt, t.Revoked = dbcore.Time(created), revoked.Valid
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens of user %d: %w", userID, err)
	}
	return out, nil
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
		var created int64
		var revoked sql.NullInt64
		err = tx.QueryRowContext(ctx, `SELECT id, user_id, name, created_at, revoked_at FROM user_tokens WHERE id = ?`, id).
			Scan(&t.ID, &t.UserID, &t.Name, &created, &revoked)
		t.CreatedAt, t.Revoked = dbcore.Time(created), revoked.Valid
		return err
	})
	if err != nil {
		return db.Token{}, fmt.Errorf("revoke token: %w", err)
	}
	return t, nil
}
