package commands

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
)

// NewUserCmd builds `scirectl user`.
func NewUserCmd(f *Factory) *cobra.Command {
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
	cmd.AddCommand(newUserAddCmd(f, nil), newUserListCmd(f, nil), newUserDeleteCmd(f, nil), newUserTokenCmd(f))
	return cmd
}

// UserAddOptions are the argument and flags of `user add`.
type UserAddOptions struct {
	remote
	Name      string
	TokenName string
	NoToken   bool
}

func newUserAddCmd(f *Factory, runF func(*UserAddOptions) error) *cobra.Command {
	o := &UserAddOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Add an operator and print a first token",
		Long: `Add an operator. A first bearer token is created and printed once: give it to
the operator (it is stored only as a hash and cannot be shown again). A new
operator may do nothing until an ACL rule allows it.`,
		Example: `  scirectl user add alice
  token=$(scirectl user add ci-bot --token-name ci -o json | jq -r .token)`,
		Args: cobra.ExactArgs(1),
		RunE: runE(o, func(args []string) { o.Name = args[0] }, runF, runUserAdd),
	}
	cmd.Flags().StringVar(&o.TokenName, "token-name", "", "name of the first token (default: token)")
	cmd.Flags().BoolVar(&o.NoToken, "no-token", false, "create no token")
	o.addFlags(cmd)
	return cmd
}

func runUserAdd(ctx context.Context, o *UserAddOptions) error {
	ios := o.io()
	t, err := call[api.NewToken](ctx, &o.remote, api.MethodUserAdd, o.Name, api.UserAddRequest{TokenName: o.TokenName, NoToken: o.NoToken})
	if err != nil {
		return err
	}
	return show(ios, &o.remote, t, func(t api.NewToken) error { return printNewToken(ios, t) })
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

// UserListOptions are the flags of `user list`.
type UserListOptions struct{ remote }

func newUserListCmd(f *Factory, runF func(*UserListOptions) error) *cobra.Command {
	o := &UserListOptions{newRemote(f)}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List operators",
		Long: `List the operators with how many live tokens each has and the user groups
each belongs to directly. -q prints only the names.`,
		Example: "  scirectl user list\n  scirectl user list -o json | jq -r '.[].name'",
		Args:    cobra.NoArgs,
		RunE:    runE(o, nil, runF, runUserList),
	}
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "user names")
	return cmd
}

func runUserList(ctx context.Context, o *UserListOptions) error {
	ios := o.io()
	us, err := call[[]api.User](ctx, &o.remote, api.MethodUserList)
	if err != nil {
		return err
	}
	return showList(ios, &o.out, us, func(u api.User) string { return u.Name }, func(us []api.User) error {
		now := clock()
		rows := make([][]string, len(us))
		for i, u := range us {
			rows[i] = []string{u.Name, strconv.Itoa(u.Tokens), dash(strings.Join(u.Groups, ",")), ago(u.CreatedAt, now)}
		}
		return printTable(ios.Out, &o.out, []string{"NAME", "TOKENS", "GROUPS", "CREATED"}, rows)
	})
}

// UserDeleteOptions are the argument and flags of `user delete`.
type UserDeleteOptions struct {
	remote
	Name string
}

func newUserDeleteCmd(f *Factory, runF func(*UserDeleteOptions) error) *cobra.Command {
	o := &UserDeleteOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an operator with its tokens",
		Long: `Delete an operator, its tokens and its group memberships. ACL rules that name
the operator must be removed first, so no rule is left meaning something
else if the name is reused.`,
		Example:           "  scirectl user delete alice",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeUsers(&o.remote),
		RunE:              runE(o, func(args []string) { o.Name = args[0] }, runF, runUserDelete),
	}
	o.addFlags(cmd)
	return cmd
}

func runUserDelete(ctx context.Context, o *UserDeleteOptions) error {
	ios := o.io()
	u, err := call[api.User](ctx, &o.remote, api.MethodUserDelete, o.Name)
	if err != nil {
		return err
	}
	return show(ios, &o.remote, u, func(u api.User) error {
		fmt.Fprintf(ios.Out, "deleted user %s\n", u.Name)
		return nil
	})
}

// UserTokenOptions are the argument and flags of `user token create`,
// `list` and `revoke`.
type UserTokenOptions struct {
	remote
	User    string // create, list: whose tokens (default: one's own)
	Name    string // create: the token's name
	TokenID string // revoke

	userGiven bool // USER was on the command line (even empty)
}

func newUserTokenCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke bearer tokens",
		Long: `Every operator may manage their own tokens; another operator's need the
user.write permission (user.read to list them).`,
		Example: "  scirectl user token create --name laptop\n  scirectl user token list\n  scirectl user token revoke 7",
	}
	cmd.AddCommand(newUserTokenCreateCmd(f, nil), newUserTokenListCmd(f, nil), newUserTokenRevokeCmd(f, nil))
	return cmd
}

func newUserTokenCreateCmd(f *Factory, runF func(*UserTokenOptions) error) *cobra.Command {
	o := &UserTokenOptions{remote: newRemote(f)}
	createCmd := &cobra.Command{
		Use:   "create [USER]",
		Short: "Create a token and print it once",
		Long: `Create a bearer token for yourself, or for USER (needs user.write). The token
is printed once on standard output and stored only as a hash.`,
		Example: `  scirectl user token create --name laptop
  scirectl user token create alice --name ci`,
		Args: cobra.MaximumNArgs(1),
		RunE: runE(o, o.setUser, runF, runUserTokenCreate),
	}
	createCmd.Flags().StringVar(&o.Name, "name", "", "a name to recognise the token by (default: token)")
	o.addFlags(createCmd)
	return createCmd
}

func (o *UserTokenOptions) setUser(args []string) {
	if len(args) == 1 {
		o.User, o.userGiven = args[0], true
	}
}

func runUserTokenCreate(ctx context.Context, o *UserTokenOptions) error {
	ios := o.io()
	t, err := call[api.NewToken](ctx, &o.remote, api.MethodUserTokenCreate, o.User, o.Name)
	if err != nil {
		return err
	}
	return show(ios, &o.remote, t, func(t api.NewToken) error { return printNewToken(ios, t) })
}

func newUserTokenListCmd(f *Factory, runF func(*UserTokenOptions) error) *cobra.Command {
	o := &UserTokenOptions{remote: newRemote(f)}
	listCmd := &cobra.Command{
		Use:   "list [USER]",
		Short: "List tokens (never their secrets)",
		Long: `List your tokens, or USER's (needs user.read): id, owner, name, whether
revoked, and when created. The secrets themselves are never shown. -q prints
only the ids.`,
		Example: "  scirectl user token list\n  scirectl user token list alice",
		Args:    cobra.MaximumNArgs(1),
		RunE:    runE(o, o.setUser, runF, runUserTokenList),
	}
	o.addFlags(listCmd)
	addQuietFlag(listCmd, &o.out, "token ids")
	return listCmd
}

func runUserTokenList(ctx context.Context, o *UserTokenOptions) error {
	ios := o.io()
	var callArgs []any
	if o.userGiven {
		callArgs = append(callArgs, o.User)
	}
	ts, err := call[[]api.Token](ctx, &o.remote, api.MethodUserTokenList, callArgs...)
	if err != nil {
		return err
	}
	return showList(ios, &o.out, ts, func(t api.Token) string { return t.ID }, func(ts []api.Token) error {
		now := clock()
		rows := make([][]string, len(ts))
		for i, t := range ts {
			state := "active"
			if t.Revoked {
				state = "revoked"
			}
			rows[i] = []string{t.ID, t.User, t.Name, state, ago(t.CreatedAt, now)}
		}
		return printTable(ios.Out, &o.out, []string{"ID", "USER", "NAME", "STATE", "CREATED"}, rows)
	})
}

func newUserTokenRevokeCmd(f *Factory, runF func(*UserTokenOptions) error) *cobra.Command {
	o := &UserTokenOptions{remote: newRemote(f)}
	revokeCmd := &cobra.Command{
		Use:   "revoke TOKEN_ID",
		Short: "Revoke a token at once",
		Long: `Revoke a token: the next call made with it is refused (fault 401). A revoked
token stays in the list, marked revoked.`,
		Example:           "  scirectl user token revoke 7",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeTokens(&o.remote),
		RunE:              runE(o, func(args []string) { o.TokenID = args[0] }, runF, runUserTokenRevoke),
	}
	o.addFlags(revokeCmd)
	return revokeCmd
}

func runUserTokenRevoke(ctx context.Context, o *UserTokenOptions) error {
	ios := o.io()
	t, err := call[api.Token](ctx, &o.remote, api.MethodUserTokenRevoke, o.TokenID)
	if err != nil {
		return err
	}
	return show(ios, &o.remote, t, func(t api.Token) error {
		fmt.Fprintf(ios.Out, "revoked token %s (%q) of %s\n", t.ID, t.Name, t.User)
		return nil
	})
}

// dash shows an empty cell as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
