//go:build unix

package commands

import "syscall"

// privateUmask makes every file and directory the process creates from now
// on private to its user (umask 077): the server's data directory holds
// keys, the admin token and the database, and not every file in it is
// created by code that names a mode (SQLite's -wal and -shm, say).
func privateUmask() { syscall.Umask(0o077) }
