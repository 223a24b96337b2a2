package service

import (
	"strings"
	"unicode"

	"github.com/scirectl/scirectl/db"
)

// CheckName refuses names that could not be shown or typed back: empty,
// too long, control characters, or surrounding spaces. Anything else —
// quotes, %, unicode — is a valid, literal name. field names the name in
// the refusal ("subject: empty").
func CheckName(field, name string) error {
	switch {
	case name == "":
		return refuseWhole(ErrInvalid, "%s: empty", field)
	case len(name) > 200:
		return refuseWhole(ErrInvalid, "%s: %d bytes, at most 200", field, len(name))
	case strings.TrimSpace(name) != name:
		return refuseWhole(ErrInvalid, "%s: %q has leading or trailing space", field, name)
	case name == "*":
		return refuseWhole(ErrInvalid, "%s: * is reserved for \"anyone\" in ACL rules", field)
	}
	for i, r := range name {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return refuseWhole(ErrInvalid, "%s: control or invalid character %U at byte %d", field, r, i)
		}
	}
	return nil
}

// CheckNewName is CheckName for the name of a user, group or client being
// created, which also must not read as an id (all digits) or a certificate
// fingerprint (64 hex digits): references try those first.
func CheckNewName(field, name string) error {
	if err := CheckName(field, name); err != nil {
		return err
	}
	switch {
	case db.IsDecimal(name):
		return refuseWhole(ErrInvalid, "%s: %q is all digits, which reads as an id: use a name with a letter in it", field, name)
	case db.IsFingerprint(name):
		return refuseWhole(ErrInvalid, "%s: %q is 64 hex digits, which reads as a certificate fingerprint", field, name)
	}
	return nil
}
