// Package selector chooses machines by what is known about them: the
// selectors of `job submit --selector`, `client list --selector` and
// dynamic client groups, and the name globs of `--target 'web*'`.
//
// Two kinds of things are known about a machine. Labels are what operators
// say about it (`scirectl client label web1 env=prod`); facts are what the
// machine says about itself (hostname, os, kernel, custom facts). A
// selector names a label by its key and a fact by "fact." and its key, so
// that which of the two a rule trusts is visible in the rule itself: an ACL
// rule may name a dynamic group only if its selector uses labels alone
// (LabelsOnly), because a machine must not be able to grant itself work by
// claiming a fact.
//
// # Syntax
//
// Selectors use Kubernetes' label-selector syntax, so that operators who
// know kubectl can write them without reading this:
//
//	selector    = requirement { "," requirement }      all must hold (AND)
//	requirement = key                                  the key is present
//	            | "!" key                              the key is absent
//	            | key ( "=" | "==" | "!=" ) [ value ]
//	            | key ( "in" | "notin" ) "(" value { "," value } ")"
//	key         = [ "fact." ] [ prefix "/" ] name
//
// Blanks (space, tab, CR, LF) may go around any token and mean nothing;
// "in" and "notin" are keywords only where an operator is expected, so a
// label may be called "in". A name is 1 to 63 letters, digits, '-', '_'
// and '.', beginning and ending with a letter or digit; a prefix is a DNS
// subdomain (lowercase letters, digits, '-' and '.', dot-separated parts
// that begin and end with a letter or digit, at most 253 characters). A
// value is empty or follows the rules of a name. Matching is exact and
// case-sensitive.
//
// As in Kubernetes, KEY!=VALUE and KEY notin (...) hold on a machine that
// lacks the key: "not in production" is true of a machine with no env
// label. Write "env,env!=prod" to ask for an env label that is not prod.
//
// # Differences from Kubernetes
//
//   - A key beginning with "fact." names a fact, always: "fact.os" is the
//     fact os, never a label of that name. CheckLabel refuses such label
//     keys, so that no label is out of reach of a selector.
//   - A fact's value may also hold '+', anywhere, and be up to 253
//     characters long: machines report kernels (6.6.31+rpt-rpi-v8),
//     versions (1.2.0+build.7) and fully qualified host names that
//     Kubernetes' rules would leave unselectable. Label values keep
//     Kubernetes' rules.
//   - The empty selector is an error, not "every machine": an empty
//     --selector is far more often a shell variable that expanded to
//     nothing than a wish to run a job everywhere.
//   - A value list holds no empty value: Kubernetes reads "in (a,)" as "a
//     or empty", which is more often a stray comma than a wish.
//   - There are no '<' and '>' operators (Kubernetes' Gt and Lt): a fact
//     such as cpus is compared as a string, for equality only.
//   - String keeps a list's values in the order written, duplicates
//     dropped, where Kubernetes sorts them.
//
// # Errors
//
// Parse's errors are *Error values, "position N: what was expected", with
// N the 1-based column (in characters) of the offending character, or of
// the last character when something is missing at the end (1 for an empty
// selector), so that a command can print a caret under it:
//
//	env in (prod   position 12: missing ')'
//	env prod       position 5: expected an operator (=, ==, !=, in, notin) or ','
//	env in ()      position 9: empty value list
//	env=pröd       position 7: invalid character 'ö' in value (allowed: ...)
//
// # Globs
//
// MatchName matches a client name against a --target pattern where '*' is
// any run of characters and '?' one character; nothing else is special.
package selector
