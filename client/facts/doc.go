// Package facts gathers what a machine says about itself (SPEC §12,
// "Facts"): the facts its agent sends at registration and again when they
// change, which selectors name as fact.KEY (`--selector 'fact.os=linux'`).
//
// # Where facts come from
//
// Built-in facts are read from the machine:
//
//	hostname       the host name (os.Hostname)
//	os, arch       runtime.GOOS and runtime.GOARCH (linux, amd64)
//	kernel         the kernel release, as uname -r prints it (Linux: /proc/sys/kernel/osrelease)
//	os_id          ID from /etc/os-release (or /usr/lib/os-release): debian, ubuntu, rhel; "linux" when the file has none
//	os_version     VERSION_ID from the same file (12, 22.04); absent when the file has none (rolling releases)
//	cpus           the CPUs the agent may use (runtime.NumCPU)
//	memory_bytes   MemTotal from /proc/meminfo, in bytes (Linux)
//	agent_version  the agent's version, given by the caller
//
// Custom facts come from the state directory's facts.d and from the
// command line:
//
//   - <state-dir>/facts.d/NAME.facts holds KEY=VALUE lines; blank lines and
//     lines beginning with '#' are skipped, blanks around the key and the
//     value are dropped.
//   - Any other file in facts.d with an execute bit (mode & 0111) is run,
//     with facts.d as its working directory, stdin /dev/null and the
//     agent's environment, and prints KEY=VALUE lines the same way. It has
//     10 seconds (Options.ExecTimeout); past them its process group is
//     killed, its children with it. One that fails (exits non-zero, is
//     killed, cannot start) or prints more than 64 KiB gives no facts at
//     all: what it printed may be incomplete. Executables run concurrently.
//   - Names beginning with '.' or ending with '~' (editor backups) are
//     skipped, and so are directories; another file (not *.facts, not
//     executable: a forgotten chmod +x) is a problem and is skipped.
//   - --fact KEY=VALUE (Options.Flags), repeatable.
//
// # Precedence
//
// A key given by more than one source takes its value from the last of
// them, in this order:
//
//	built-in  <  facts.d, its entries in name order  <  --fact
//
// so an operator can correct a built-in fact (`--fact hostname=web1`) and a
// facts.d file named 99-local.facts overrides one named 10-site.facts.
// Within one source, a key given twice is a problem and the later line
// wins.
//
// # Rules and limits
//
// Every fact must be selectable: keys and values follow the selector
// package's rules for facts (selector.CheckFact). A key is a name of 1 to
// 63 letters, digits, '-', '_' and '.' beginning and ending with a letter
// or digit, optionally after a DNS-subdomain prefix and '/'
// (example.com/rack), and is written without "fact.", which selectors add.
// A value is empty or up to 253 letters, digits, '-', '_', '.' and '+',
// beginning and ending with a letter, digit or '+'.
//
// A machine reports at most MaxFacts facts, of at most MaxBytes together
// (counted as the canonical form, "KEY=VALUE\n" a fact). Over a limit, the
// facts are taken in a fixed order — the built-in keys in the order
// above, then the others in byte order of their keys — and each that
// would break a limit is left out, so the same facts always give the same
// result and the built-in facts are the last to go.
//
// # Problems
//
// Collect never fails as a whole: a fact it cannot read, a malformed
// line, an invalid key or value, a failing or slow executable is a Problem
// naming where it happened (file and line), and the fact is left out. The
// agent logs the problems and sends the rest. A bad --fact is better
// refused when the agent starts: ParseFlags gives the error to print.
//
// # Sending only changes
//
// Facts.Hash is the SHA-256 of the canonical form, the facts' KEY=VALUE
// lines sorted by key: the agent sends the hash with each heartbeat and the
// facts themselves only when the server's hash differs.
package facts
