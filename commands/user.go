package commands

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
)

// NewUserCmd builds `scirectl user`.
func NewUserCmd(ios *IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage operators and their tokens",
		Long: `Operators call the server with a bearer token. The built-in admin exists
from the first start; its token is in <data-dir>/admin.token. What any other
operator may do is decided by the ACL (see "scirectl acl").`,
		Example: `  scirectl user add alice
  scirectl acl add user:alice run group:web
  scirectl user token create --name laptop
  scirectl user token revoke 7`,
	}
	cmd.AddCommand(newUserAddCmd(ios), newUserListCmd(ios), newUserDeleteCmd(ios), newUserTokenCmd(ios))
	return cmd
}

func newUserAddCmd(ios *IOStreams) *cobra.Command {
	var r remote
	var tokenName string
	var noToken bool
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Add an operator and print a first token",
		Long: `Add an operator. A first bearer token is created and printed once: give it to
the operator (it is stored only as a hash and cannot be shown again). A new
operator may do nothing until an ACL rule allows it.`,
		Example: `  scirectl user add alice
  token=$(scirectl user add ci-bot --token-name ci -o json | jq -r .token)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := map[string]any{"no_token": noToken}
			if tokenName != "" {
				opts["token_name"] = tokenName
			}
			t, err := call[api.NewToken](cmd.Context(), &r, "user.add", args[0], opts)
			if err != nil {
				return err
			}
			return show(ios, &r, t, func(t api.NewToken) error { return printNewToken(ios, t) })
		},
	}
	cmd.Flags().StringVar(&tokenName, "token-name", "", "name of the first token (default: token)")
	cmd.Flags().BoolVar(&noToken, "no-token", false, "create no token")
	r.addFlags(cmd)
	return cmd
}

func printNewToken(ios *IOStreams, t api.NewToken) error {
	if t.Token == "" {
		fmt.Fprintf(ios.Out, "user %s added, without a token\n", t.User)
		return nil
	}
	fmt.Fprintf(ios.ErrOut, "token %s (%q) for %s; it is shown only this once:\n", t.ID, t.Name, t.User)
	fmt.Fprintln(ios.Out, t.Token)
	return nil
}

func newUserListCmd(ios *IOStreams) *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List operators",
		Long: `List the operators with how many live tokens each has and the user groups
each belongs to directly. -q prints only the names.`,
		Example: "  scirectl user list\n  scirectl user list -o json | jq -r '.[].name'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			us, err := call[[]api.User](cmd.Context(), &r, "user.list")
			if err != nil {
				return err
			}
			return showList(ios, &r.out, us, func(u api.User) string { return u.Name }, func(us []api.User) error {
				now := clock()
				rows := make([][]string, len(us))
				for i, u := range us {
					rows[i] = []string{u.Name, strconv.Itoa(u.Tokens), dash(strings.Join(u.Groups, ",")), ago(u.CreatedAt, now)}
				}
				return printTable(ios.Out, &r.out, []string{"NAME", "TOKENS", "GROUPS", "CREATED"}, rows)
			})
		},
	}
	r.addFlags(cmd)
	addQuietFlag(cmd, &r.out, "user names")
	return cmd
}

func newUserDeleteCmd(ios *IOStreams) *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an operator with its tokens",
		Long: `Delete an operator, its tokens and its group memberships. ACL rules that name
the operator must be removed first, so no rule is left meaning something
else if the name is reused.`,
		Example:           "  scirectl user delete alice",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeUsers(&r.conn),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := call[api.User](cmd.Context(), &r, "user.delete", args[0])
			if err != nil {
				return err
			}
			return show(ios, &r, u, func(u api.User) error {
				fmt.Fprintf(ios.Out, "deleted user %s\n", u.Name)
				return nil
			})
		},
	}
	r.addFlags(cmd)
	return cmd
}

func newUserTokenCmd(ios *IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke bearer tokens",
		Long: `Every operator may manage their own tokens; another operator's need the
user.write permission (user.read to list them).`,
		Example: "  scirectl user token create --name laptop\n  scirectl user token list\n  scirectl user token revoke 7",
	}
	var create, list, revoke remote
	var name, user string
	createCmd := &cobra.Command{
		Use:   "create [USER]",
		Short: "Create a token and print it once",
		Long: `Create a bearer token for yourself, or for USER (needs user.write). The token
is printed once on standard output and stored only as a hash.`,
		Example: `  scirectl user token create --name laptop
  scirectl user token create alice --name ci`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				user = args[0]
			}
			t, err := call[api.NewToken](cmd.Context(), &create, "user.token.create", user, name)
			if err != nil {
				return err
			}
			return show(ios, &create, t, func(t api.NewToken) error { return printNewToken(ios, t) })
		},
	}
	createCmd.Flags().StringVar(&name, "name", "", "a name to recognise the token by (default: token)")
	create.addFlags(createCmd)
	listCmd := &cobra.Command{
		Use:   "list [USER]",
		Short: "List tokens (never their secrets)",
		Long: `List your tokens, or USER's (needs user.read): id, owner, name, whether
revoked, and when created. The secrets themselves are never shown. -q prints
only the ids.`,
		Example: "  scirectl user token list\n  scirectl user token list alice",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var callArgs []any
			if len(args) == 1 {
				callArgs = append(callArgs, args[0])
			}
			ts, err := call[[]api.Token](cmd.Context(), &list, "user.token.list", callArgs...)
			if err != nil {
				return err
			}
			return showList(ios, &list.out, ts, func(t api.Token) string { return t.ID }, func(ts []api.Token) error {
				now := clock()
				rows := make([][]string, len(ts))
				for i, t := range ts {
					state := "active"
					if t.Revoked {
						state = "revoked"
					}
					rows[i] = []string{t.ID, t.User, t.Name, state, ago(t.CreatedAt, now)}
				}
				return printTable(ios.Out, &list.out, []string{"ID", "USER", "NAME", "STATE", "CREATED"}, rows)
			})
		},
	}
	list.addFlags(listCmd)
	addQuietFlag(listCmd, &list.out, "token ids")
	revokeCmd := &cobra.Command{
		Use:   "revoke TOKEN_ID",
		Short: "Revoke a token at once",
		Long: `Revoke a token: the next call made with it is refused (fault 401). A revoked
token stays in the list, marked revoked.`,
		Example:           "  scirectl user token revoke 7",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeTokens(&revoke.conn),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := call[api.Token](cmd.Context(), &revoke, "user.token.revoke", args[0])
			if err != nil {
				return err
			}
			return show(ios, &revoke, t, func(t api.Token) error {
				fmt.Fprintf(ios.Out, "revoked token %s (%q) of %s\n", t.ID, t.Name, t.User)
				return nil
			})
		},
	}
	revoke.addFlags(revokeCmd)
	cmd.AddCommand(createCmd, listCmd, revokeCmd)
	return cmd
}

// dash shows an empty cell as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
