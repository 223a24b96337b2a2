// Package blacklist reads, checks and writes the server's blacklist: the file
// `blacklist` in the data directory that names operations ("job.submit",
// "db.reset", "acl.*") refused in all circumstances, for every user, with
// fault 405 (docs/protocol.md, "The gate and the blacklist").
//
// # Why it exists
//
// The blacklist comes from RefactorErl's job server, where an operator could
// switch off whole groups of operations (say, everything that adds to or
// resets the database) on a shared installation. RefactorErl read its
// ui_router_blacklist with file:consult and silently ignored a file it could
// not read or a name that meant nothing, so a typo quietly left the operation
// allowed. This package is strict instead: Parse rejects a malformed file, and
// any name or glob that matches no known operation, with a *ParseError that
// carries the file, the line, the column and the reason, so that the server
// refuses to start rather than run with a blacklist other than the one the
// operator meant.
//
// # File format
//
// Two forms are accepted; the first significant character decides. If it is
// '[' (after blanks, an optional UTF-8 byte order mark and '%' comments) the
// file is in RefactorErl's Erlang-term form, a single list terminated by a
// dot:
//
//	% operations nobody may run
//	[job.submit, 'db.reset',
//	 "acl.*"].
//
// Names are unquoted atoms (a lowercase letter or '*' first, then letters, digits,
// '_', '@', '*', and '.' between them), quoted atoms ('...', escapes \\ \'
// and \", which are understood but, like every character outside the name
// set below, refused inside a name) or strings ("..."). '%' starts a
// comment, and a quoted name ends on the line it starts. Anything else — a
// missing '.', ']' or name, a stray ',', a number, a tuple, a second term —
// is an error.
//
// Otherwise the file is in line form, one name per line, which is what Format
// writes:
//
//	# operations nobody may run
//	job.submit
//	db.reset   # also the CLI's db reset
//	acl.*
//
// '#' starts a comment; blank lines are ignored; blanks around a name are
// trimmed; two names on one line are an error. An empty file, or one of
// blanks and comments only (either kind), is the empty list.
//
// In both forms a name may hold ASCII letters, digits and '.', '_', '-', '@'
// and '*'. '*' matches any run of characters, dots included ("acl.*",
// "*.list", "*"); there are no other metacharacters and matching is
// case-sensitive. Lines and columns in errors count from 1; columns count
// characters (runes), a tab is one column, and a leading byte order mark is
// not counted.
//
// # Using it
//
// The server calls Load(path, known) at start and on SIGHUP, with known the
// names of every operation it serves, and keeps the *List (immutable, safe for
// concurrent use) to call Match before running an operation. The blacklist
// commands use Validate, Add, Remove and Write, which replaces the file
// atomically so that a crash never leaves a half-written blacklist behind.
package blacklist
