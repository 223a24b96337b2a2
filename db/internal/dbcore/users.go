package dbcore

// Users and their tokens, and the removal of the ACL rules that name what
// is deleted.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/scirectl/scirectl/db"
)

// BuiltinAdmin is the user that exists from first start and cannot be
// deleted (acl.Admin; the drivers cannot import acl, which imports db).
const BuiltinAdmin = "admin"

// UserCols are the columns ScanUser reads, of the users table.
const UserCols = `id, name, created_at`

// ScanUser reads a row of UserCols.
func ScanUser(row Scanner) (db.User, error) {
	var u db.User
	var created int64
	err := row.Scan(&u.ID, &u.Name, &created)
	u.CreatedAt = Time(created)
	return u, err
}

// TokenCols are the columns ScanToken reads, of the user_tokens table
// (not the hash).
const TokenCols = `id, user_id, name, created_at, revoked_at IS NOT NULL`

// ScanToken reads a row of TokenCols.
func ScanToken(row Scanner) (db.Token, error) {
	var t db.Token
	var created int64
	err := row.Scan(&t.ID, &t.UserID, &t.Name, &created, &t.Revoked)
	t.CreatedAt = Time(created)
	return t, err
}

// CreateToken stores a token hash for a user; ErrNotFound for a user that
// does not exist, where the dialect says so (Classify).
func (s Store) CreateToken(ctx context.Context, userID int64, name string, hash []byte) (db.Token, error) {
	d := s.db.Dialect()
	t := db.Token{UserID: userID, Name: name, Hash: hash, CreatedAt: time.Now().UTC()}
	err := s.db.Write(ctx, func(q Querier) (err error) {
		t.ID, err = q.Insert(ctx, `INSERT INTO user_tokens (user_id, name, hash, created_at) VALUES (`+placeholders(d, 4)+`)`,
			userID, name, hash, t.CreatedAt.UnixNano())
		return err
	})
	if err != nil {
		if err := d.Classify(err); errors.Is(err, db.ErrNotFound) {
			return db.Token{}, fmt.Errorf("create token for user %d: %w", userID, NotFound("user", userID))
		}
		return db.Token{}, fmt.Errorf("create token for user %d: %w", userID, d.Classify(err))
	}
	return t, nil
}

// TokenByID returns a token and its user.
func (s Store) TokenByID(ctx context.Context, id int64) (db.Token, db.User, error) {
	var t db.Token
	var u db.User
	var tc, uc int64
	err := s.db.Reader().QueryRow(ctx, `
		SELECT t.id, t.user_id, t.name, t.hash, t.created_at, t.revoked_at IS NOT NULL, u.id, u.name, u.created_at
		FROM user_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = `+s.db.Dialect().P(1), id).
		Scan(&t.ID, &t.UserID, &t.Name, &t.Hash, &tc, &t.Revoked, &u.ID, &u.Name, &uc)
	if NoRows(err) {
		return t, u, NotFound("token", id)
	} else if err != nil {
		return t, u, fmt.Errorf("token %d: %w", id, err)
	}
	t.CreatedAt, u.CreatedAt = Time(tc), Time(uc)
	return t, u, nil
}

// EnsureUser returns the named user, creating it if needed.
func (s Store) EnsureUser(ctx context.Context, name string) (db.User, error) {
	if name == "" {
		return db.User{}, fmt.Errorf("ensure user: empty name: %w", db.ErrInvalid)
	}
	d := s.db.Dialect()
	var u db.User
	err := s.db.Write(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO users (name, created_at) VALUES (`+d.P(1)+`, `+d.P(2)+`) ON CONFLICT (name) DO NOTHING`,
			name, time.Now().UnixNano())
		if err != nil {
			return err
		}
		u, err = ScanUser(q.QueryRow(ctx, `SELECT `+UserCols+` FROM users WHERE name = `+d.P(1), name))
		return err
	})
	if err != nil {
		return db.User{}, fmt.Errorf("ensure user %q: %w", name, d.Classify(err))
	}
	return u, nil
}

// CreateUser adds a user; a taken name is ErrConflict.
func (s Store) CreateUser(ctx context.Context, name string) (db.User, error) {
	if err := db.CheckNewName("user", name); err != nil {
		return db.User{}, fmt.Errorf("create user: %w", err)
	}
	d := s.db.Dialect()
	u := db.User{Name: name, CreatedAt: time.Now().UTC()}
	err := s.db.Write(ctx, func(q Querier) (err error) {
		u.ID, err = q.Insert(ctx, `INSERT INTO users (name, created_at) VALUES (`+d.P(1)+`, `+d.P(2)+`)`, name, u.CreatedAt.UnixNano())
		return err
	})
	if d.IsUnique(err) {
		return db.User{}, fmt.Errorf("create user %q: the name is taken: %w", name, db.ErrConflict)
	} else if err != nil {
		return db.User{}, fmt.Errorf("create user %q: %w", name, d.Classify(err))
	}
	return u, nil
}

// UserByName returns a user.
func (s Store) UserByName(ctx context.Context, name string) (db.User, error) {
	d := s.db.Dialect()
	u, err := ScanUser(s.db.Reader().QueryRow(ctx, `SELECT `+UserCols+` FROM users WHERE name = `+d.P(1), name))
	if NoRows(err) {
		return u, NotFound("user", strconv.Quote(name))
	} else if err != nil {
		return u, fmt.Errorf("user %q: %w", name, d.Classify(err))
	}
	return u, nil
}

// ListUsers lists users by name (bytewise, as SQLite sorts).
func (s Store) ListUsers(ctx context.Context) ([]db.User, error) {
	var out []db.User
	err := s.db.Reader().Each(ctx, `SELECT `+UserCols+` FROM users ORDER BY name`, nil, func(row Scanner) error {
		u, err := ScanUser(row)
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
func (s Store) DeleteUser(ctx context.Context, name string) ([]db.ACLRule, error) {
	if name == BuiltinAdmin {
		return nil, fmt.Errorf("delete user %q: admin is built in: %w", name, db.ErrInvalid)
	}
	d := s.db.Dialect()
	var removed []db.ACLRule
	err := s.db.Write(ctx, func(q Querier) error {
		var id int64
		err := q.QueryRow(ctx, `SELECT id FROM users WHERE name = `+d.P(1)+d.ForUpdate, name).Scan(&id)
		if NoRows(err) {
			return NotFound("user", strconv.Quote(name))
		} else if err != nil {
			return err
		}
		if removed, err = RemoveRules(ctx, q, d, `subject_kind = 'user' AND subject = `+d.P(1), name); err != nil {
			return err
		}
		_, err = q.Exec(ctx, `DELETE FROM users WHERE id = `+d.P(1), id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete user: %w", d.Classify(err))
	}
	return removed, nil
}

// ListTokens lists a user's tokens, oldest first, without their hashes.
func (s Store) ListTokens(ctx context.Context, userID int64) ([]db.Token, error) {
	d := s.db.Dialect()
	var out []db.Token
	err := s.db.Read(ctx, func(q Querier) error {
		out = nil
		if ok, err := Exists(ctx, q, `SELECT 1 FROM users WHERE id = `+d.P(1), userID); err != nil {
			return err
		} else if !ok {
			return NotFound("user", userID)
		}
		return q.Each(ctx, `SELECT `+TokenCols+` FROM user_tokens WHERE user_id = `+d.P(1)+` ORDER BY id`, []any{userID},
			func(row Scanner) error {
				t, err := ScanToken(row)
				out = append(out, t)
				return err
			})
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens of user %d: %w", userID, err)
	}
	return out, nil
}

// RemoveRules deletes the ACL rules matching cond (a constant SQL fragment
// whose one parameter, placeholder 1, is arg) and returns them as they
// were, by id.
func RemoveRules(ctx context.Context, q Querier, d *Dialect, cond string, arg any) ([]db.ACLRule, error) {
	var out []db.ACLRule
	scan := func(row Scanner) error {
		r, err := ScanRule(row)
		out = append(out, r)
		return err
	}
	if d.Returning {
		err := q.Each(ctx, `DELETE FROM acl_rules WHERE `+cond+` RETURNING `+RuleCols, []any{arg}, scan)
		slices.SortFunc(out, func(a, b db.ACLRule) int { return cmp.Compare(a.ID, b.ID) })
		return out, err
	}
	err := q.Each(ctx, `SELECT `+RuleCols+` FROM acl_rules WHERE `+cond+` ORDER BY id`, []any{arg}, scan)
	if err != nil || len(out) == 0 {
		return out, err
	}
	_, err = q.Exec(ctx, `DELETE FROM acl_rules WHERE `+cond, arg)
	return out, err
}
