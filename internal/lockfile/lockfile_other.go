//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package lockfile

import "os"

// lock is not implemented here: Acquire fails with ErrUnsupported, and
// callers decide whether to go on without it.
func lock(*os.File) (bool, error) { return false, ErrUnsupported }
