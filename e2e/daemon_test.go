package e2e

import (
	"crypto/tls"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/pki"
)

// logTime finds the first log line matching rx and returns its time= field.
func logTime(log string, rx *regexp.Regexp) (time.Time, bool) {
	for _, l := range strings.Split(log, "\n") {
		if !rx.MatchString(l) {
			continue
		}
		m := regexp.MustCompile(`^time=(\S+)`).FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// TestDaemonModePush: an agent in daemon mode polling once an hour gets and
// runs a job right after job.submit: it waits for work in agent.getJobs and
// is answered there (last push "woken"), or, caught between two waits, is
// pushed agent.pollNow (last push "ok"); nobody without a certificate from
// the server CA can push it. (The push alone, to an agent that does not
// wait: server/push_test.go.)
func TestDaemonModePush(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	listen := freeLoopbackAddr(t)
	agent := start(t, nil, "client", "poll", "--server", srv.url, "--ca", srv.caFile(), "--state-dir", filepath.Join(dir, "agent"),
		"--name", "daemon-agent", "--daemon", "--listen", listen, "--interval", "1h")
	eventually(t, 30*time.Second, "the agent to register", func() bool {
		var cs []client
		srv.cliJSON(t, &cs, "client", "list", "--status", "pending")
		return len(cs) == 1
	})
	if out, errOut, code := srv.cli(t, "", "client", "accept", "daemon-agent"); code != 0 {
		t.Fatalf("client accept: exit %d: %s%s", code, out, errOut)
	}
	// Pending, the agent registers again with a back-off of a few seconds;
	// then it polls once and sleeps for its hour.
	eventually(t, 60*time.Second, "the agent to be accepted and poll once", func() bool {
		return strings.Contains(agent.log.String(), "msg=registered")
	})
	time.Sleep(300 * time.Millisecond)

	var cl []struct {
		Mode        string `json:"mode"`
		CallbackURL string `json:"callback_url"`
		LastPush    *struct {
			Result string `json:"result"`
		} `json:"last_push"`
	}
	srv.cliJSON(t, &cl, "client", "list")
	wantURL := "https://" + listen + "/RPC2"
	if len(cl) != 1 || cl[0].Mode != "daemon" || cl[0].CallbackURL != wantURL {
		t.Fatalf("client list = %+v, want mode daemon with callback %s", cl, wantURL)
	}

	submitted := time.Now()
	var sub struct {
		ID string `json:"id"`
	}
	srv.cliJSON(t, &sub, "job", "submit", "--target", "daemon-agent", "-c", "echo pushed", "--timeout", "30s")
	var j job
	eventually(t, 5*time.Second, "the pushed job to succeed (the agent polls once an hour)", func() bool {
		srv.cliJSON(t, &j, "job", "status", sub.ID)
		return len(j.Runs) == 1 && j.Runs[0].State == "succeeded"
	})
	done := time.Since(submitted)
	queued, ok := logTime(agent.log.String(), regexp.MustCompile(`msg="job queued" .*\bjob=`+sub.ID+` `))
	if !ok {
		t.Fatalf("no \"job queued\" line for job %s in the agent log:\n%s", sub.ID, agent.log.String())
	}
	committed, ok := logTime(srv.log.String(), regexp.MustCompile(`msg=request .*method=job\.submit `))
	if !ok {
		t.Fatalf("no job.submit request line in the server log")
	}
	t.Logf("push latency: job.submit answered → job received by the agent %v; CLI submit started → received %v; → succeeded (as seen by polling the CLI) %v",
		queued.Sub(committed).Round(time.Millisecond), queued.Sub(submitted).Round(time.Millisecond), done.Round(time.Millisecond))
	if out, _, _ := srv.cli(t, "", "job", "output", sub.ID); out != "pushed\n" {
		t.Fatalf("job output = %q", out)
	}
	srv.cliJSON(t, &cl, "client", "list")
	if cl[0].LastPush == nil || (cl[0].LastPush.Result != "woken" && cl[0].LastPush.Result != "ok") {
		t.Fatalf("client list: last_push = %+v, want woken (or ok)", cl[0].LastPush)
	}
	t.Logf("last push: %s", cl[0].LastPush.Result)
	if out, _, code := srv.cli(t, "", "client", "list", "-o", "wide"); code != 0 || !strings.Contains(out, "LAST PUSH") || !strings.Contains(out, wantURL) {
		t.Fatalf("client list -o wide:\n%s", out)
	}

	// agent.pollNow without a certificate from the server CA is refused in
	// the TLS handshake: none, or a self-signed one.
	certPEM, keyPEM, err := pki.SelfSigned("intruder", nil)
	if err != nil {
		t.Fatal(err)
	}
	self, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	for name, cert := range map[string]*tls.Certificate{"no certificate": nil, "self-signed": &self} {
		conf := &tls.Config{InsecureSkipVerify: true}
		if cert != nil { // presented whatever CAs the agent asks for
			conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
		resp, err := hc.Post(wantURL, "text/xml", strings.NewReader(
			`<?xml version="1.0"?><methodCall><methodName>agent.pollNow</methodName><params/></methodCall>`))
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: agent.pollNow answered HTTP %s, want a refused handshake", name, resp.Status)
		}
		t.Logf("%s: refused: %v", name, err)
	}
	agent.stop(t)
}
