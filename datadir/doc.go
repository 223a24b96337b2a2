// Package datadir holds what a server keeps in its data directory and how
// it is made and checked: the file names (Paths), the directory's privacy
// (CheckDataDir), the CA and the server and push certificates (EnsureTLS),
// the bearer tokens and the built-in admin's token file (NewToken,
// VerifyToken, EnsureAdmin), and the lock that keeps one daemon per SQLite
// database (LockDatabase). The server, the CLI's offline commands and the
// load generator share it, so none of them reaches into the server for a
// file name.
package datadir
