package service

import (
	"errors"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/blacklist"
)

// EditBlacklist adds or removes patterns in the blacklist file at path and
// rewrites it atomically; known are the operation names a pattern may
// match. The server (blacklist.add, blacklist.remove, which then reload it)
// and the CLI's --offline mode share it. Refusals: invalid for a bad
// pattern, or one that would blacklist api.SelfLockout without force (after
// which only an edit of the file could undo it); not found for removing a
// pattern that is not listed; conflict when the file is broken.
func EditBlacklist(path string, known []string, add, force bool, patterns []string) ([]string, error) {
	cur, err := blacklist.Load(path, known)
	if err != nil {
		return nil, refuse(ErrConflict, "the blacklist file is broken, fix it by hand first: %v", err)
	}
	var next []string
	if add {
		for _, pt := range patterns {
			if err := blacklist.Validate(pt, known); err != nil {
				return nil, refuse(ErrInvalid, "%v", err)
			}
		}
		next = blacklist.Add(cur, patterns...)
		if !force {
			for _, pt := range patterns {
				if blacklist.Matches(pt, api.SelfLockout) {
					return nil, refuse(ErrInvalid,
						"%q would blacklist %s itself: afterwards only an edit of %s can undo it; repeat with force to do it anyway",
						pt, api.SelfLockout, path)
				}
			}
		}
	} else {
		next, err = blacklist.Remove(cur, patterns...)
		if errors.Is(err, blacklist.ErrNotListed) {
			return nil, refuse(ErrNotFound, "%v", err)
		} else if err != nil {
			return nil, err
		}
	}
	if err := blacklist.Write(path, next); err != nil {
		return nil, err
	}
	return next, nil
}
