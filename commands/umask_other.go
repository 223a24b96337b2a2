//go:build !unix

package commands

// privateUmask has nothing to set where there is no umask.
func privateUmask() {}
