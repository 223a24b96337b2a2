package service_test

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/acl"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/service"
)

// allow adds an ACL rule letting user hold permission on a client (by
// name), or on every client and the server when target is "*".
func allow(t *testing.T, s *service.Service, user, permission, target string) db.ACLRule {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Store.EnsureUser(ctx, user); err != nil {
		t.Fatal(err)
	}
	r := db.ACLRule{SubjectKind: db.KindUser, Subject: user, Permission: permission, TargetKind: db.KindAny,
		Allow: true, Active: true, CreatedBy: "admin"}
	if target != "*" {
		c, err := s.Client(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		r.TargetKind, r.Target, r.TargetID = db.KindClient, c.Name, c.ID
	}
	r, err := s.Store.AddACLRule(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	s.Policy.Invalidate()
	return r
}

func user(name string) db.User { return db.User{Name: name} }

func str(s string) *string { return &s }

// A job on a client and a group: the group is resolved to its active
// members now, each client once; the job and the record of its submission
// are stored together.
func TestPrepareAndSubmitJob(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	s.ServerID = func() int64 { return 7 }
	web1 := register(t, s, fp(0), "web1", db.ClientActive)
	web2 := register(t, s, fp(1), "web2", db.ClientActive)
	pending := register(t, s, fp(2), "new", db.ClientPending)
	if _, err := s.Store.CreateGroup(ctx, db.KindClientGroup, "web", ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range []db.Client{web1, web2, pending} {
		if err := s.Store.AddGroupMember(ctx, db.KindClientGroup, "web", db.Member{ClientID: c.ID}); err != nil {
			t.Fatal(err)
		}
	}
	allow(t, s, "alice", "run", "web1")
	sub, err := s.PrepareJob(ctx, user("alice"), service.JobRequest{Script: "uptime\necho done", Targets: []string{"web1"},
		Groups: []string{"web"}, Priority: 5, Timeout: 60, Audit: "script=… targets=web1"})
	if err != nil {
		t.Fatal(err)
	}
	j := sub.Job
	if j.Name != "uptime" || j.Interpreter != "/bin/sh" || j.Permission != "run" || j.SubmittedBy != "alice" ||
		j.Priority != 5 || j.Timeout != time.Minute || !reflect.DeepEqual(j.Targets, []string{"web1", "group:web"}) ||
		!reflect.DeepEqual(j.ClientIDs, []int64{web1.ID, web2.ID}) || len(sub.Clients) != 2 {
		t.Fatalf("prepared job = %+v (%d clients)", j, len(sub.Clients))
	}
	if a := sub.Audit; a.Name != "job.submit" || a.Actor != "alice" || a.Outcome != "ok" || a.ServerID != 7 || a.Target != "script=… targets=web1" {
		t.Fatalf("audit record = %+v", a)
	}
	done, err := s.SubmitJob(ctx, sub)
	if err != nil || done.Job.ID == 0 || done.Runs() != 2 || len(done.Clients) != 2 {
		t.Fatalf("SubmitJob = %+v, %v; want a job with 2 runs", done, err)
	}
	ops, err := s.Store.ListOperations(ctx, db.AuditFilter{Name: "job.submit"})
	if err != nil || len(ops) != 1 || ops[0].Target != "script=… targets=web1" || ops[0].ServerID != 7 {
		t.Fatalf("audit trail = %+v, %v; want the submission's record", ops, err)
	}
}

// Every check of PrepareJob, with the kind of its refusal. Refusals naming
// a field leave the method's name to the caller; lookups read whole.
func TestPrepareJobRefusals(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	s.Namespaces = acl.NewNamespaces([]string{"job.read"}, []string{"job"})
	register(t, s, fp(0), "web1", db.ClientActive)
	p := register(t, s, fp(1), "idle", db.ClientPending)
	if _, err := s.Store.CreateGroup(ctx, db.KindClientGroup, "empty", ""); err != nil {
		t.Fatal(err)
	}
	allow(t, s, "alice", "run", "*")
	ok := service.JobRequest{Script: "true", Targets: []string{"web1"}}
	with := func(f func(*service.JobRequest)) service.JobRequest { r := ok; f(&r); return r }
	for _, tc := range []struct {
		req   service.JobRequest
		kind  error
		text  string
		whole bool
	}{
		{with(func(r *service.JobRequest) { r.Script = "" }), service.ErrInvalid, "script: required and must not be empty", false},
		{with(func(r *service.JobRequest) { r.Script = strings.Repeat("x", service.MaxScriptBytes+1) }), service.ErrInvalid, "script: 1048577 bytes, at most 1048576", false},
		{with(func(r *service.JobRequest) { r.Name = "a\x00b" }), service.ErrInvalid, "name", false},
		{with(func(r *service.JobRequest) { r.Interpreter = str("") }), service.ErrInvalid, "interpreter: must be a non-empty path", false},
		{with(func(r *service.JobRequest) { r.Permission = str("") }), service.ErrInvalid, "permission: must be 1..64 characters", false},
		{with(func(r *service.JobRequest) { r.Permission = str("job.read") }), service.ErrInvalid, `permission: "job.read" is an admin permission`, false},
		{with(func(r *service.JobRequest) { r.Name = strings.Repeat("n", 201) }), service.ErrInvalid, "name: longer than 200 bytes", false},
		{with(func(r *service.JobRequest) { r.Priority = 1000001 }), service.ErrInvalid, "priority: 1000001 is outside -1000000..1000000", false},
		{with(func(r *service.JobRequest) { r.Timeout = -1 }), service.ErrInvalid, "timeout: -1 seconds is outside 0..604800", false},
		{with(func(r *service.JobRequest) { r.MaxAttempts = 1001 }), service.ErrInvalid, "max_attempts: 1001 is outside 0..1000", false},
		{with(func(r *service.JobRequest) { r.NotBefore = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }), service.ErrInvalid, "not_before: ", false},
		{with(func(r *service.JobRequest) { r.ExpiresAt = time.Now().Add(-time.Hour) }), service.ErrInvalid, "is not in the future", false},
		{with(func(r *service.JobRequest) { r.Targets = nil }), service.ErrInvalid, "targets: required", false},
		{with(func(r *service.JobRequest) { r.Targets = make([]string, service.MaxTargets+1) }), service.ErrInvalid, "targets: 10001 targets, groups and selectors, at most 10000", false},
		{with(func(r *service.JobRequest) { r.Targets = []string{"nope"} }), service.ErrNotFound, `no client with id, fingerprint or name "nope"`, true},
		{with(func(r *service.JobRequest) { r.Targets = []string{"idle"} }), service.ErrConflict, `target "idle": client ` + itoa(p.ID) + ` is pending, not active`, false},
		{with(func(r *service.JobRequest) { r.Targets, r.Groups = nil, []string{"none"} }), service.ErrNotFound, `no client group "none"`, true},
		{with(func(r *service.JobRequest) { r.Targets, r.Groups = nil, []string{"empty"} }), service.ErrConflict, "groups empty have no active client", false},
	} {
		_, err := s.PrepareJob(ctx, user("alice"), tc.req)
		wantKind(t, err, tc.kind, tc.text)
		if e := (*service.Error)(nil); !errors.As(err, &e) || e.Whole != tc.whole {
			t.Errorf("%q: Whole = %v, want %v", tc.text, e.Whole, tc.whole)
		}
	}
	ops, _ := s.Store.ListOperations(ctx, db.AuditFilter{})
	if len(ops) != 0 {
		t.Fatalf("refusals wrote audit records: %+v", ops)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A job no target may run is refused as forbidden, with the audit record
// of the refusal for the caller to write; nothing is stored.
func TestPrepareJobDeniedByTheACL(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	register(t, s, fp(0), "web1", db.ClientActive)
	register(t, s, fp(1), "web2", db.ClientActive)
	allow(t, s, "bob", "run", "web1")
	_, err := s.PrepareJob(ctx, user("bob"), service.JobRequest{Script: "reboot", Targets: []string{"web2"}, Permission: str("reboot")})
	wantKind(t, err, service.ErrForbidden, `bob may not "reboot" on any target: `)
	var d *service.Denied
	if !errors.As(err, &d) || d.Permission != "reboot" || d.Reason == "" {
		t.Fatalf("err = %#v, want a *Denied", err)
	}
	if r := d.Record; r.Name != "job.submit" || r.Actor != "bob" || r.Outcome != "denied" || r.Target != "web2" || r.Detail != d.Reason {
		t.Fatalf("denial record = %+v", r)
	}
	// Allowed on one target of two: the job goes to both, and the other
	// run is denied at dispatch.
	if _, err := s.PrepareJob(ctx, user("bob"), service.JobRequest{Script: "true", Targets: []string{"web1", "web2"}}); err != nil {
		t.Fatal(err)
	}
}

// A batch is one transaction; when it fails, each job is stored alone, so
// one job's failure is not the others'.
func TestSubmitJobsFallsBackToOneJobAtATime(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	register(t, s, fp(0), "web1", db.ClientActive)
	allow(t, s, "alice", "run", "*")
	var subs []service.Submission
	for _, script := range []string{"echo one", "echo two", "echo three"} {
		sub, err := s.PrepareJob(ctx, user("alice"), service.JobRequest{Script: script, Targets: []string{"web1"}})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	done, errs := s.SubmitJobs(ctx, subs[:2])
	if errs[0] != nil || errs[1] != nil || done[0].Job.ID == 0 || done[1].Job.ID <= done[0].Job.ID {
		t.Fatalf("SubmitJobs = %+v, %v", done, errs)
	}
	broken := subs[1]
	broken.Job.ClientIDs = []int64{9999} // no such client: the store refuses this job
	done, errs = s.SubmitJobs(ctx, []service.Submission{subs[0], broken, subs[2]})
	if errs[0] != nil || errs[1] == nil || errs[2] != nil || done[0].Job.ID == 0 || done[2].Job.ID == 0 {
		t.Fatalf("SubmitJobs with a broken job = %+v, %v; want the others stored", done, errs)
	}
	if done, errs := s.SubmitJobs(ctx, nil); len(done) != 0 || len(errs) != 0 {
		t.Fatalf("SubmitJobs(nil) = %v, %v", done, errs)
	}
}

// refuser is the daemon's Authorizer in small: it refuses every admin
// permission and remembers which were asked.
type refuser struct{ asked []string }

func (r *refuser) Authorize(_ context.Context, perm string) error {
	r.asked = append(r.asked, perm)
	return &service.Error{Kind: service.ErrForbidden, Msg: "denied: " + perm}
}

func submit(t *testing.T, s *service.Service, by, target string) service.Submitted {
	t.Helper()
	ctx := context.Background()
	sub, err := s.PrepareJob(ctx, user(by), service.JobRequest{Script: "echo " + by, Targets: []string{target}})
	if err != nil {
		t.Fatal(err)
	}
	done, err := s.SubmitJob(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	return done
}

// Everyone sees their own jobs; others' need job.read.
func TestJobsOfOthersNeedJobRead(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	authz := &refuser{}
	s.Authz = authz
	register(t, s, fp(0), "web1", db.ClientActive)
	allow(t, s, "alice", "run", "*")
	allow(t, s, "bob", "run", "*")
	mine := submit(t, s, "alice", "web1").Job.ID
	theirs := submit(t, s, "bob", "web1").Job.ID

	all := db.JobFilter{Limit: 100}
	js, err := s.ListJobs(ctx, user("alice"), all)
	if err != nil || len(js) != 1 || js[0].ID != mine {
		t.Fatalf("alice's list = %+v, %v; want her job only", js, err)
	}
	_, err = s.ListJobs(ctx, user("alice"), db.JobFilter{Limit: 100, SubmittedBy: "bob"})
	wantKind(t, err, service.ErrForbidden, "denied: job.read")
	_, err = s.ListJobs(ctx, user("alice"), db.JobFilter{})
	wantKind(t, err, service.ErrInvalid, "limit: 0 is outside 1..10000")
	if _, _, err := s.Job(ctx, user("alice"), mine); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Job(ctx, user("alice"), theirs)
	wantKind(t, err, service.ErrForbidden, "denied: job.read")
	_, err = s.JobOutput(ctx, user("alice"), theirs, "", nil)
	wantKind(t, err, service.ErrForbidden, "denied: job.read")
	if !reflect.DeepEqual(authz.asked, []string{"job.read", "job.read", "job.read"}) {
		t.Fatalf("asked %v", authz.asked)
	}

	allow(t, s, "alice", "job.read", "*")
	if js, err := s.ListJobs(ctx, user("alice"), all); err != nil || len(js) != 2 {
		t.Fatalf("alice's list with job.read = %+v, %v; want both jobs", js, err)
	}
	if _, _, err := s.Job(ctx, user("alice"), 999); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("job 999: %v, want not found", err)
	}
}

func TestJobWithRunsAndOutput(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	web1 := register(t, s, fp(0), "web1", db.ClientActive)
	allow(t, s, "alice", "run", "*")
	id := submit(t, s, "alice", "web1").Job.ID
	j, runs, err := s.Job(ctx, user("alice"), id)
	if err != nil || j.Script != "echo alice" || len(runs) != 1 || runs[0].ClientID != web1.ID {
		t.Fatalf("Job = %+v, %+v, %v", j, runs, err)
	}
	for _, client := range []string{"", "web1", itoa(web1.ID)} {
		if out, err := s.JobOutput(ctx, user("alice"), id, client, nil); err != nil || len(out) != 1 {
			t.Fatalf("JobOutput(%q) = %+v, %v", client, out, err)
		}
	}
	_, err = s.JobOutput(ctx, user("alice"), id, "db1", nil)
	wantKind(t, err, service.ErrNotFound, `job `+itoa(id)+` has no run on client "db1"`)
}

// One's own jobs need no permission to cancel; others' need job.cancel.
// Cancelling again changes nothing.
func TestCancelJob(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	authz := &refuser{}
	s.Authz = authz
	register(t, s, fp(0), "web1", db.ClientActive)
	allow(t, s, "alice", "run", "*")
	id := submit(t, s, "alice", "web1").Job.ID
	_, err := s.CancelJob(ctx, user("bob"), id)
	wantKind(t, err, service.ErrForbidden, "denied: job.cancel")
	changes, err := s.CancelJob(ctx, user("alice"), id)
	if err != nil || len(changes) != 1 {
		t.Fatalf("CancelJob = %+v, %v; want one run cancelled", changes, err)
	}
	if changes, err := s.CancelJob(ctx, user("alice"), id); err != nil || len(changes) != 0 {
		t.Fatalf("CancelJob again = %+v, %v; want nothing", changes, err)
	}
	_, runs, _ := s.Job(ctx, user("alice"), id)
	if runs[0].State != "cancelled" || runs[0].Reason != "cancelled by alice" {
		t.Fatalf("run = %+v", runs[0])
	}
	if _, err := s.CancelJob(ctx, user("alice"), 999); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("cancel job 999: %v", err)
	}
}
