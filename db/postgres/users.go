package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// EnsureUser returns the named user, creating it if needed.
func (s *Store) EnsureUser(ctx context.Context, name string) (db.User, error) {
	if name == "" {
		return db.User{}, fmt.Errorf("ensure user: empty name: %w", db.ErrInvalid)
	}
	var u db.User
	err := s.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO users (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
			name, time.Now().UnixNano())
		if err != nil {
			return err
		}
		var created int64
		err = tx.QueryRow(ctx, `SELECT id, name, created_at FROM users WHERE name = $1`, name).Scan(&u.ID, &u.Name, &created)
		u.CreatedAt = dbcore.Time(created)
		return err
	})
	if err != nil {
		return db.User{}, fmt.Errorf("ensure user %q: %w", name, classify(err))
	}
	return u, nil
}

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

// builtinAdmin is the user that exists from first start and cannot be
// deleted (acl.Admin; this package cannot import acl, which imports db).
const builtinAdmin = "admin"

// CreateUser adds a user; a taken name is ErrConflict.
func (s *Store) CreateUser(ctx context.Context, name string) (db.User, error) {
	if err := db.CheckNewName("user", name); err != nil {
		return db.User{}, fmt.Errorf("create user: %w", err)
	}
	u := db.User{Name: name, CreatedAt: time.Now().UTC()}
	err := s.pool.QueryRow(ctx, `INSERT INTO users (name, created_at) VALUES ($1, $2) RETURNING id`, name, u.CreatedAt.UnixNano()).Scan(&u.ID)
	if isUnique(err) {
		return db.User{}, fmt.Errorf("create user %q: the name is taken: %w", name, db.ErrConflict)
	} else if err != nil {
		return db.User{}, fmt.Errorf("create user %q: %w", name, classify(err))
	}
	return u, nil
}

// UserByName returns a user.
func (s *Store) UserByName(ctx context.Context, name string) (db.User, error) {
	var u db.User
	var created int64
	err := s.pool.QueryRow(ctx, `SELECT id, name, created_at FROM users WHERE name = $1`, name).Scan(&u.ID, &u.Name, &created)
	if noRows(err) {
		return u, dbcore.NotFound("user", strconv.Quote(name))
	} else if err != nil {
		return u, fmt.Errorf("user %q: %w", name, classify(err))
	}
	u.CreatedAt = dbcore.Time(created)
	return u, nil
}

// ListUsers lists users by name (bytewise, as SQLite sorts).
func (s *Store) ListUsers(ctx context.Context) ([]db.User, error) {
	var out []db.User
	err := eachRow(ctx, s.pool, `SELECT id, name, created_at FROM users ORDER BY name`, nil, func(rows pgx.Rows) error {
		var u db.User
		var created int64
		err := rows.Scan(&u.ID, &u.Name, &created)
		u.CreatedAt = dbcore.Time(created)
		out = append(out, u)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// DeleteUser removes a user; its tokens and group memberships go with it
// (foreign keys cascade), and so do the ACL rules whose subject it is, in
// the same transaction, returned as they were: rules name a user by name,
// and a user created later under the same name must not inherit them. The
// built-in admin is ErrInvalid. The user's row is locked first, and
// AddACLRule share-locks it, so a rule added meanwhile is seen or waits.
func (s *Store) DeleteUser(ctx context.Context, name string) ([]db.ACLRule, error) {
	if name == builtinAdmin {
		return nil, fmt.Errorf("delete user %q: admin is built in: %w", name, db.ErrInvalid)
	}
	var removed []db.ACLRule
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `SELECT id FROM users WHERE name = $1 FOR UPDATE`, name).Scan(&id)
		if noRows(err) {
			return dbcore.NotFound("user", strconv.Quote(name))
		} else if err != nil {
			return err
		}
		if removed, err = removeRules(ctx, tx, `subject_kind = 'user' AND subject = $1`, name); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete user: %w", classify(err))
	}
	return removed, nil
}

// ListTokens lists a user's tokens, oldest first, without their hashes.
func (s *Store) ListTokens(ctx context.Context, userID int64) ([]db.Token, error) {
	var out []db.Token
	err := s.read(ctx, func(tx pgx.Tx) error {
		out = nil
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1`, userID).Scan(&one)
		if noRows(err) {
			return dbcore.NotFound("user", userID)
		} else if err != nil {
			return err
		}
		return eachRow(ctx, tx, `SELECT id, user_id, name, created_at, revoked_at FROM user_tokens WHERE user_id = $1 ORDER BY id`,
			[]any{userID}, func(rows pgx.Rows) error {
				var t db.Token
				var created int64
				var revoked *int64
				err := rows.Scan(&t.ID, &t.UserID, &t.Name, &created, &revoked)
				t.CreatedAt, t.Revoked = dbcore.Time(created), revoked != nil
				out = append(out, t)
				return err
			})
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens of user %d: %w", userID, err)
	}
	return out, nil
}

// RevokeToken marks a token revoked; the first revocation time is kept.
func (s *Store) RevokeToken(ctx context.Context, id int64) (db.Token, error) {
	var t db.Token
	var created int64
	var revoked *int64
	err := s.pool.QueryRow(ctx, `UPDATE user_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2
		RETURNING id, user_id, name, created_at, revoked_at`, time.Now().UnixNano(), id).
		Scan(&t.ID, &t.UserID, &t.Name, &created, &revoked)
	if noRows(err) {
		return db.Token{}, fmt.Errorf("revoke token: %w", dbcore.NotFound("token", id))
	} else if err != nil {
		return db.Token{}, fmt.Errorf("revoke token: %w", err)
	}
	t.CreatedAt, t.Revoked = dbcore.Time(created), revoked != nil
	return t, nil
}
