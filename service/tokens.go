package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"

	"github.com/scirectl/scirectl/db"
)

// Tokens are "scire_<id>_<secret>": the id finds the row, the secret's
// SHA-256 is compared in constant time, so neither a timing difference nor
// a database dump reveals a usable token.
const tokenPrefix = "scire_"

// MintToken makes a token for a user and stores its hash; it returns the
// token, to be shown once, and its row.
func MintToken(ctx context.Context, st db.Store, userID int64, name string) (string, db.Token, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", db.Token{}, err
	}
	sec := hex.EncodeToString(secret)
	sum := sha256.Sum256([]byte(sec))
	t, err := st.CreateToken(ctx, userID, name, sum[:])
	if err != nil {
		return "", db.Token{}, err
	}
	return tokenPrefix + strconv.FormatInt(t.ID, 10) + "_" + sec, t, nil
}

// ErrBadToken refuses a token without saying which part was wrong.
var ErrBadToken = errors.New("invalid or revoked token")

// VerifyToken returns the user a token belongs to.
func VerifyToken(ctx context.Context, st db.Store, token string) (db.User, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(token), tokenPrefix)
	if !ok {
		return db.User{}, ErrBadToken
	}
	idStr, sec, ok := strings.Cut(rest, "_")
	id, err := strconv.ParseInt(idStr, 10, 64)
	if !ok || err != nil || id <= 0 {
		return db.User{}, ErrBadToken
	}
	t, u, err := st.TokenByID(ctx, id)
	if errors.Is(err, db.ErrNotFound) {
		return db.User{}, ErrBadToken
	} else if err != nil {
		return db.User{}, err
	}
	sum := sha256.Sum256([]byte(sec))
	if subtle.ConstantTimeCompare(sum[:], t.Hash) != 1 || t.Revoked {
		return db.User{}, ErrBadToken
	}
	return u, nil
}
