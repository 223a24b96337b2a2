package storetest

// Identities are never reused or confused: an id, once handed out, names
// that one object for the life of the database (deletes, Reset and Restore
// included), and a name that reads as an id or a fingerprint is refused.

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/db"
)

// highIDs are the newest ids of each kind a test made.
type highIDs struct {
	client, user, token, group, rule, job, run, server int64
}

// makeOneOfEach makes a client, a user with a token, a client group, a
// rule, a job with one run and a server entry, all tagged, and returns
// their ids.
func makeOneOfEach(t *testing.T, s db.Store, tag string) highIDs {
	t.Helper()
	ctx := context.Background()
	c := mustClient(t, s, "host-"+tag, false)
	u := must(s.CreateUser(ctx, "user-"+tag))(t)
	tok := must(s.CreateToken(ctx, u.ID, "t", []byte{1}))(t)
	g := must(s.CreateGroup(ctx, db.KindClientGroup, "group-"+tag, ""))(t)
	r := must(s.AddACLRule(ctx, clientRule(db.KindUser, u.Name, "run", c.ID)))(t)
	j := mustSubmit(t, s, "job-"+tag, 0, c.ID)
	runs := must(s.Runs(ctx, j.ID))(t)
	srv := must(s.RegisterServer(ctx, db.ServerInfo{Address: "127.0.0.1:7443", Hostname: tag, StartedAt: t0, HeartbeatAt: t0}))(t)
	return highIDs{client: c.ID, user: u.ID, token: tok.ID, group: g.ID, rule: r.ID, job: j.ID, run: runs[0].ID, server: srv.ID}
}

// deleteNewest deletes what makeOneOfEach made that can be deleted one by
// one: the client (with its run and rule), the user (with its token) and
// the group.
func deleteNewest(t *testing.T, s db.Store, tag string, ids highIDs) {
	t.Helper()
	ctx := context.Background()
	gone := must(s.DeleteClient(ctx, ids.client))(t)
	if len(gone) != 1 || gone[0].ID != ids.rule {
		t.Fatalf("deleting client %d removed rules %+v, want rule %d", ids.client, gone, ids.rule)
	}
	must(s.DeleteUser(ctx, "user-"+tag))(t)
	ok(t, s.DeleteGroup(ctx, db.KindClientGroup, "group-"+tag))
}

// wantAbove fails unless every id of got is above the same id of was.
func wantAbove(t *testing.T, what string, got, was highIDs) {
	t.Helper()
	for _, c := range []struct {
		kind     string
		got, was int64
	}{
		{"client", got.client, was.client}, {"user", got.user, was.user}, {"token", got.token, was.token},
		{"group", got.group, was.group}, {"rule", got.rule, was.rule}, {"job", got.job, was.job},
		{"run", got.run, was.run}, {"server", got.server, was.server},
	} {
		if c.got <= c.was {
			t.Errorf("%s: new %s id %d, but id %d was handed out before: ids are reused", what, c.kind, c.got, c.was)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func testIDsNeverReused(t *testing.T, s db.Store) {
	ctx := context.Background()
	// The newest client (and user, token, group, rule, run) deleted: the
	// next one gets a new id, not the freed one.
	first := makeOneOfEach(t, s, "a")
	deleteNewest(t, s, "a", first)
	second := makeOneOfEach(t, s, "b")
	wantAbove(t, "after deleting the newest", second, first)

	// The rule naming the deleted client is gone with it; the new client,
	// whatever its id, is named only by its own rule.
	rules := must(s.ListACLRules(ctx))(t)
	if len(rules) != 1 || rules[0].ID != second.rule || rules[0].TargetID != second.client {
		t.Fatalf("rules = %+v, want only rule %d naming client %d", rules, second.rule, second.client)
	}

	// Reset empties the tables but keeps the sequences.
	ok(t, s.Reset(ctx))
	third := makeOneOfEach(t, s, "c")
	wantAbove(t, "after Reset", third, second)

	// A backup taken now, then newer rows: restoring the backup does not
	// move the sequences back to the backup's.
	path := filepath.Join(t.TempDir(), "ids.db")
	ok(t, s.Backup(ctx, path))
	fourth := makeOneOfEach(t, s, "d")
	deleteNewest(t, s, "d", fourth)
	ok(t, s.Restore(ctx, path))
	if _, err := s.Client(ctx, third.client); err != nil {
		t.Fatalf("restored client %d: %v", third.client, err)
	}
	fifth := makeOneOfEach(t, s, "e")
	wantAbove(t, "after Restore of an older backup", fifth, fourth)
}

func testRestoreKeepsBackupSequences(t *testing.T, s db.Store) {
	ctx := context.Background()
	// The backup's own sequences are above its rows (its newest client was
	// deleted before it was taken); a Reset store restores it, and still
	// never hands out that deleted client's id.
	a := makeOneOfEach(t, s, "a")
	b := makeOneOfEach(t, s, "b")
	deleteNewest(t, s, "b", b)
	path := filepath.Join(t.TempDir(), "seq.db")
	ok(t, s.Backup(ctx, path))
	ok(t, s.Reset(ctx))
	ok(t, s.Restore(ctx, path))
	if _, err := s.Client(ctx, a.client); err != nil {
		t.Fatalf("restored client %d: %v", a.client, err)
	}
	c := mustClient(t, s, "host-c", false)
	if c.ID <= b.client {
		t.Fatalf("client registered after the restore got id %d; %d was handed out (and deleted) before the backup", c.ID, b.client)
	}
}

func testNamesThatLookLikeIDs(t *testing.T, s db.Store) {
	ctx := context.Background()
	fp := strings.Repeat("ab12", 16)
	for _, name := range []string{"17", "0", "0017", fp, strings.ToUpper(fp)} {
		_, err := s.CreateUser(ctx, name)
		wantErrText(t, fmt.Sprintf("user %q", name), err, db.ErrInvalid, "user name")
		for _, k := range []string{db.KindUserGroup, db.KindClientGroup} {
			_, err := s.CreateGroup(ctx, k, name, "")
			wantErrText(t, fmt.Sprintf("%s %q", k, name), err, db.ErrInvalid, k+" name")
		}
		_, err = s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp-" + name, Name: name, Hostname: name, At: t0})
		wantErrText(t, fmt.Sprintf("client %q", name), err, db.ErrInvalid, "client name")
	}
	for _, name := range []string{"", "bad\x00name", "tab\there"} {
		_, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp-x", Name: name, Hostname: "h", At: t0})
		wantErrText(t, fmt.Sprintf("client %q", name), err, db.ErrInvalid, "client name")
	}
	if cs := must(s.ListClients(ctx, db.ClientFilter{}))(t); len(cs) != 0 {
		t.Fatalf("refused registrations stored clients: %+v", cs)
	}
	// Names with a digit and a letter, or hex of another length, are names.
	for _, name := range []string{"web17", "17a", "1e10", fp[:63], fp + "0", "-17"} {
		must(s.CreateUser(ctx, name))(t)
		must(s.CreateGroup(ctx, db.KindClientGroup, name, ""))(t)
		mustClient(t, s, name, false)
	}
}
