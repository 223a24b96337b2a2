package agent

import (
	"crypto/tls"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/scirectl/scirectl/api"
	clientfacts "github.com/scirectl/scirectl/client/facts"
	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/pki"
)

// fakeServer implements the five agent methods in memory, with just enough
// XML-RPC to talk to package client, and records what the agent did.
type fakeServer struct {
	t        *testing.T
	srv      *httptest.Server
	caFile   string
	stateDir string // the agent's, to check the queue at ack time

	mu          sync.Mutex
	status      string
	fingerprint string
	pending     []jobxml.Job // to hand out, in order
	rawDocs     []string     // extra documents handed out as they are
	sent        map[int64]bool
	acks        map[int64]int
	ackedNoFile []int64 // runs acknowledged while not in the agent's queue (must not happen)
	reports     map[int64][]jobxml.Status
	stale       map[int64]bool
	calls       []string       // methods called, each call of a system.multicall too
	requests    []string       // one per request: its method, system.multicall(m1,m2,…) for a multicall
	failAck     int            // answer the next n ackJobs with HTTP 500
	failReport  int            // answer the next n reportStatus with fault 500; -1: always
	failBeat    int            // answer the next n heartbeat with fault 500; -1: always
	poison      string         // refuse (fault 409) any report batch with an output containing this
	cancelIDs   []string       // agent.heartbeat's cancel: runs the operator cancelled
	lostIDs     map[int64]bool // agent.heartbeat's lost: of the held runs named, these were declared lost
	oldBeat     bool           // agent.heartbeat takes no param (a server older than held runs): fault 400
	beats       []heldBeat     // every agent.heartbeat call, with the runs it named
	cancelled   map[int64]bool // agent.reportStatus answers cancelled: true (and accepted) for these runs
	// beforeReport, when set, is called with the status document of each
	// agent.reportStatus call before it is handled, outside the lock (it
	// may wait).
	beforeReport func(doc string)
	facts        map[string]string // of the last agent.register, but its facts member
	// The machine's facts (agent.register's facts member): registers
	// holds the member of each agent.register call, nil when it had none;
	// machine the facts stored, whose hash heartbeats answer as facts_hash
	// ("" while none are).
	registers   []map[string]string
	machine     map[string]string
	oldRegister bool    // refuse the facts member as a server older than it does (fault 400)
	dropFacts   int     // do not store the facts of the next n agent.register calls
	beatHash    *string // answer this facts_hash instead of the stored facts'
	waitAsked   int     // agent.getJobs calls with a wait, refused as an older server does
	answerWait  bool    // take agent.getJobs' wait, but answer at once as if it were over
	holdWait    bool    // take agent.getJobs' wait and hold the call for it (with nothing to send)
	plainGets   int     // agent.getJobs calls without a wait

	// agent.output: each run's stream as stored (contiguous from 0), and
	// every chunk received.
	output    map[int64][]byte
	chunks    []gotChunk
	outCalls  int  // agent.output calls so far
	oldOutput bool // agent.output is an unknown method (an older server)
	failOut   int  // answer the next n agent.output calls with fault 500
}

// gotChunk is one chunk of agent.output the fake server received.
type gotChunk struct {
	call   int // the agent.output call that brought it, from 1
	at     time.Time
	run    int64
	offset int
	size   int
	ack    api.OutputAck
}

func newFakeServer(t *testing.T, stateDir string) *fakeServer {
	f := &fakeServer{t: t, stateDir: stateDir, status: "active", sent: map[int64]bool{}, acks: map[int64]int{},
		reports: map[int64][]jobxml.Status{}, stale: map[int64]bool{}, cancelled: map[int64]bool{},
		output: map[int64][]byte{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	f.caFile = filepath.Join(t.TempDir(), "ca.crt")
	pemCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(f.caFile, pemCA, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// heldBeat is one agent.heartbeat call the fake server saw.
type heldBeat struct {
	at   time.Time
	held []int64 // the runs it named
}

// heartbeats returns the agent.heartbeat calls seen so far.
func (f *fakeServer) heartbeats() []heldBeat {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.beats)
}

func (f *fakeServer) url() string { return f.srv.URL + "/RPC2" }

func (f *fakeServer) addJob(j jobxml.Job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if j.Interpreter == "" {
		j.Interpreter = "/bin/sh"
	}
	if j.Attempt == 0 {
		j.Attempt = 1
	}
	j.Permission, j.SubmittedBy = "run", "alice"
	if j.Name == "" {
		j.Name = "job" + strconv.FormatInt(j.ID, 10)
	}
	f.pending = append(f.pending, j)
}

// final returns the last report of run, if it is final.
func (f *fakeServer) final(run int64) (jobxml.Status, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rs := f.reports[run]
	if len(rs) == 0 || rs[len(rs)-1].State == jobxml.StateRunning {
		return jobxml.Status{}, false
	}
	return rs[len(rs)-1], true
}

func (f *fakeServer) sawState(run int64, s jobxml.State) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.reports[run], func(st jobxml.Status) bool { return st.State == s })
}

// --- a minimal XML-RPC codec ---

type xValue struct {
	Text    string   `xml:",chardata"`
	String  *string  `xml:"string"`
	Int     *string  `xml:"int"`
	I4      *string  `xml:"i4"`
	Struct  *xStruct `xml:"struct"`
	Array   *xArray  `xml:"array"`
	Boolean *string  `xml:"boolean"`
}
type xMember struct {
	Name  string `xml:"name"`
	Value xValue `xml:"value"`
}
type xStruct struct {
	Members []xMember `xml:"member"`
}
type xArray struct {
	Values []xValue `xml:"data>value"`
}
type xCall struct {
	Method string   `xml:"methodName"`
	Params []xValue `xml:"params>param>value"`
}

func (v xValue) str() string {
	switch {
	case v.String != nil:
		return *v.String
	case v.Int != nil:
		return *v.Int
	case v.I4 != nil:
		return *v.I4
	}
	return v.Text
}

func encodeValue(b *strings.Builder, v any) {
	b.WriteString("<value>")
	switch v := v.(type) {
	case string:
		b.WriteString("<string>")
		xml.EscapeText(b, []byte(v))
		b.WriteString("</string>")
	case int:
		fmt.Fprintf(b, "<int>%d</int>", v)
	case bool:
		if v {
			b.WriteString("<boolean>1</boolean>")
		} else {
			b.WriteString("<boolean>0</boolean>")
		}
	case time.Time:
		fmt.Fprintf(b, "<dateTime.iso8601>%s</dateTime.iso8601>", v.UTC().Format("20060102T15:04:05"))
	case []any:
		b.WriteString("<array><data>")
		for _, e := range v {
			encodeValue(b, e)
		}
		b.WriteString("</data></array>")
	case map[string]any:
		b.WriteString("<struct>")
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(b, "<member><name>%s</name>", k)
			encodeValue(b, v[k])
			b.WriteString("</member>")
		}
		b.WriteString("</struct>")
	default:
		panic(fmt.Sprintf("encodeValue: %T", v))
	}
	b.WriteString("</value>")
}

type fault struct {
	code int
	msg  string
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var call xCall
	if err := xml.Unmarshal(body, &call); err != nil {
		f.t.Errorf("fake server: bad call: %v\n%s", err, body)
		http.Error(w, "bad call", 400)
		return
	}
	calls := []xCall{call}
	multi := call.Method == "system.multicall"
	if multi {
		calls = nil
		var names []string
		for _, e := range call.Params[0].Array.Values {
			var c xCall
			for _, m := range e.Struct.Members {
				switch m.Name {
				case "methodName":
					c.Method = m.Value.str()
				case "params":
					c.Params = m.Value.Array.Values
				}
			}
			calls = append(calls, c)
			names = append(names, c.Method)
		}
		call.Method += "(" + strings.Join(names, ",") + ")"
	}
	fp := pki.Fingerprint(r.TLS.PeerCertificates[0].Raw)
	f.mu.Lock()
	f.requests = append(f.requests, call.Method)
	if f.fingerprint == "" {
		f.fingerprint = fp
	} else if f.fingerprint != fp {
		f.t.Errorf("fake server: fingerprint changed from %s to %s", f.fingerprint, fp)
	}
	hook := f.beforeReport
	f.mu.Unlock()
	var results []string
	for _, c := range calls {
		if c.Method == "agent.reportStatus" && hook != nil && len(c.Params) == 1 {
			hook(c.Params[0].str())
		}
		f.mu.Lock()
		f.calls = append(f.calls, c.Method)
		if c.Method == "agent.ackJobs" && f.failAck > 0 {
			f.failAck--
			f.mu.Unlock()
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		}
		res, flt := f.handle(c)
		f.mu.Unlock()
		var b strings.Builder
		switch {
		case flt != nil:
			encodeValue(&b, map[string]any{"faultCode": flt.code, "faultString": flt.msg})
		case multi:
			encodeValue(&b, []any{res})
		default:
			encodeValue(&b, res)
		}
		if flt != nil && !multi {
			results = append(results, "<fault>"+b.String()+"</fault>")
		} else {
			results = append(results, b.String())
		}
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><methodResponse>`)
	switch {
	case multi:
		b.WriteString("<params><param><value><array><data>" + strings.Join(results, "") + "</data></array></value></param></params>")
	case strings.HasPrefix(results[0], "<fault>"):
		b.WriteString(results[0])
	default:
		b.WriteString("<params><param>" + results[0] + "</param></params>")
	}
	b.WriteString("</methodResponse>")
	w.Header().Set("Content-Type", "text/xml")
	io.WriteString(w, b.String())
}

func (f *fakeServer) handle(call xCall) (any, *fault) {
	if call.Method != "agent.register" && f.status != "active" {
		return nil, &fault{402, "client is " + f.status}
	}
	switch call.Method {
	case "agent.register":
		facts := map[string]string{}
		var machine map[string]string
		for _, m := range call.Params[0].Struct.Members {
			if m.Name != "facts" {
				facts[m.Name] = m.Value.str()
				continue
			}
			if f.oldRegister {
				// As package xmlrpc's Struct.Unknown words it.
				return nil, &fault{400, `param 1 (facts): unknown member "facts" (allowed: arch, callback_url, hostname, mode, name, os, version)`}
			}
			if m.Value.Struct == nil {
				f.t.Errorf("register: facts member is not a struct")
				return nil, &fault{400, `param 1 (facts): member "facts": expected struct`}
			}
			machine = map[string]string{}
			for _, fm := range m.Value.Struct.Members {
				machine[fm.Name] = fm.Value.str()
			}
			if err := clientfacts.Facts(machine).Check(); err != nil {
				f.t.Errorf("register: facts %v: %v", machine, err)
				return nil, &fault{400, `param 1 (facts): member "facts": ` + err.Error()}
			}
		}
		f.registers = append(f.registers, machine)
		switch {
		case machine == nil:
		case f.dropFacts > 0:
			f.dropFacts--
		default:
			f.machine = machine
		}
		if facts["hostname"] == "" || facts["name"] == "" ||
			(facts["mode"] != "poll" && (facts["mode"] != "daemon" || facts["callback_url"] == "")) {
			f.t.Errorf("register facts %v", facts)
		}
		f.facts = facts
		return map[string]any{"client_id": "1", "status": f.status}, nil
	case "agent.heartbeat":
		var held []int64
		if len(call.Params) > 0 && call.Params[0].Array != nil {
			for _, v := range call.Params[0].Array.Values {
				id, _ := strconv.ParseInt(strings.TrimSpace(v.str()), 10, 64)
				held = append(held, id)
			}
		}
		f.beats = append(f.beats, heldBeat{at: time.Now(), held: held})
		if f.oldBeat && len(call.Params) > 0 {
			return nil, &fault{400, "wrong number of params: got 1, want 0"}
		}
		lost := []any{}
		for _, id := range held {
			if f.lostIDs[id] {
				lost = append(lost, strconv.FormatInt(id, 10))
			}
		}
		if f.failBeat != 0 {
			if f.failBeat > 0 {
				f.failBeat--
			}
			return nil, &fault{500, "internal error (injected)"}
		}
		cancel := []any{}
		for _, id := range f.cancelIDs {
			cancel = append(cancel, id)
		}
		hash := ""
		if f.machine != nil {
			hash = clientfacts.Facts(f.machine).Hash()
		}
		if f.beatHash != nil {
			hash = *f.beatHash
		}
		return map[string]any{"server_time": time.Now(), "poll_interval": 1, "cancel": cancel, "lost": lost,
			"facts_hash": hash}, nil
	case "agent.getJobs":
		if len(call.Params) > 1 { // a server older than the wait (the long poll)
			f.waitAsked++
			if f.holdWait && len(f.pending) == 0 && len(f.rawDocs) == 0 {
				wait, _ := strconv.Atoi(strings.TrimSpace(call.Params[1].str()))
				f.mu.Unlock()
				time.Sleep(time.Duration(wait) * time.Second)
				f.mu.Lock()
				return []any{}, nil
			}
			if !f.answerWait && !f.holdWait {
				return nil, &fault{400, "wrong number of params: got 2, want 1"}
			}
		} else {
			f.plainGets++
		}
		max, err := strconv.Atoi(strings.TrimSpace(call.Params[0].str()))
		if err != nil || max < 1 || max > 1000 {
			return nil, &fault{400, "bad max"}
		}
		out := []any{}
		for len(out) < max && len(f.rawDocs) > 0 {
			out = append(out, f.rawDocs[0])
			f.rawDocs = f.rawDocs[1:]
		}
		for len(out) < max && len(f.pending) > 0 {
			j := f.pending[0]
			f.pending = f.pending[1:]
			doc, err := jobxml.EncodeJob(j)
			if err != nil {
				f.t.Errorf("encode job: %v", err)
			}
			f.sent[j.Run] = true
			out = append(out, string(doc))
		}
		return out, nil
	case "agent.ackJobs":
		stale := []any{}
		for _, v := range call.Params[0].Array.Values {
			run, _ := strconv.ParseInt(v.str(), 10, 64)
			if !f.sent[run] {
				return nil, &fault{404, "run " + v.str() + " not found"}
			}
			if f.stale[run] {
				stale = append(stale, v.str())
				continue
			}
			if !exists(filepath.Join(f.stateDir, "queue", v.str()+".xml")) && !exists(filepath.Join(f.stateDir, "outbox", v.str()+".xml")) && len(f.reports[run]) == 0 {
				f.ackedNoFile = append(f.ackedNoFile, run)
			}
			f.acks[run]++
		}
		return map[string]any{"acknowledged": len(call.Params[0].Array.Values) - len(stale), "stale": stale}, nil
	case "agent.reportStatus":
		if f.failReport != 0 {
			if f.failReport > 0 {
				f.failReport--
			}
			return nil, &fault{500, "internal error (injected)"}
		}
		sts, err := jobxml.DecodeStatuses([]byte(call.Params[0].str()))
		if err != nil {
			return nil, &fault{400, err.Error()}
		}
		for _, st := range sts {
			if f.poison != "" && strings.Contains(st.Output, f.poison) {
				return nil, &fault{409, "run " + strconv.FormatInt(st.Run, 10) + " was not sent to this client"}
			}
		}
		out := []any{}
		for _, st := range sts {
			f.reports[st.Run] = append(f.reports[st.Run], st)
			ans := map[string]any{"run_id": strconv.FormatInt(st.Run, 10), "accepted": f.sent[st.Run]}
			// A final report of a run in cancelIDs is answered cancelled too
			// (a "running" one is not, so that those runs learn of the
			// cancel from agent.heartbeat alone).
			if f.cancelled[st.Run] || (st.State != jobxml.StateRunning && slices.Contains(f.cancelIDs, strconv.FormatInt(st.Run, 10))) {
				// Like the server: the run stays cancelled, the report changed nothing.
				ans["accepted"], ans["cancelled"], ans["error"] = true, true, "run is cancelled"
			}
			out = append(out, ans)
		}
		return out, nil
	case "agent.output":
		if f.oldOutput {
			break
		}
		if f.failOut > 0 {
			f.failOut--
			return nil, &fault{500, "internal error (injected)"}
		}
		return f.handleOutput(call)
	}
	// As package xmlrpc answers an unknown method.
	return nil, &fault{404, fmt.Sprintf("method not found: %q", call.Method)}
}

// handleOutput is agent.output as the server does it: each run's stream is
// stored contiguously; a chunk starting past what is stored is not stored
// and the answer's offset says where to send from; a chunk already stored
// (a resend) is accepted, and must hold the same bytes; a run that is not
// the caller's, or is final, gets stop.
func (f *fakeServer) handleOutput(call xCall) (any, *fault) {
	if len(call.Params) != 1 || call.Params[0].Array == nil {
		f.t.Errorf("agent.output: params %+v", call.Params)
		return nil, &fault{400, "want one array of chunks"}
	}
	f.outCalls++
	vals := call.Params[0].Array.Values
	if len(vals) == 0 || len(vals) > api.MaxChunksPerCall {
		f.t.Errorf("agent.output: %d chunks", len(vals))
		return nil, &fault{400, "bad chunk count"}
	}
	out := []any{}
	for _, v := range vals {
		var c api.OutputChunk
		if v.Struct == nil {
			f.t.Errorf("agent.output: chunk is not a struct")
			return nil, &fault{400, "chunk is not a struct"}
		}
		for _, m := range v.Struct.Members {
			switch m.Name {
			case "run_id":
				c.RunID = m.Value.str()
			case "offset":
				c.Offset, _ = strconv.Atoi(strings.TrimSpace(m.Value.str()))
			case "data":
				c.Data = m.Value.str()
			}
		}
		run, err := strconv.ParseInt(c.RunID, 10, 64)
		if err != nil || c.Offset < 0 || len(c.Data) == 0 || len(c.Data) > api.MaxOutputChunk || !utf8.ValidString(c.Data) {
			f.t.Errorf("agent.output: bad chunk run %q offset %d, %d bytes, valid UTF-8 %v", c.RunID, c.Offset, len(c.Data), utf8.ValidString(c.Data))
			return nil, &fault{400, "bad chunk"}
		}
		have := f.output[run]
		ack := api.OutputAck{RunID: c.RunID}
		rs := f.reports[run]
		switch {
		case !f.sent[run] || (len(rs) > 0 && rs[len(rs)-1].State != jobxml.StateRunning):
			ack.Stop = true
		case c.Offset > len(have):
			ack.Error = "gap: output from offset " + strconv.Itoa(len(have)) + " missing"
		default:
			overlap := min(len(have)-c.Offset, len(c.Data))
			if string(have[c.Offset:c.Offset+overlap]) != c.Data[:overlap] {
				f.t.Errorf("agent.output: run %d: resent bytes at %d differ", run, c.Offset)
			}
			f.output[run] = append(have, c.Data[overlap:]...)
			ack.Accepted = true
		}
		ack.Offset = len(f.output[run])
		f.chunks = append(f.chunks, gotChunk{call: f.outCalls, at: time.Now(), run: run, offset: c.Offset, size: len(c.Data), ack: ack})
		m := map[string]any{"run_id": ack.RunID, "offset": ack.Offset, "accepted": ack.Accepted, "stop": ack.Stop}
		if ack.Error != "" {
			m["error"] = ack.Error
		}
		out = append(out, m)
	}
	return out, nil
}

// registered returns the facts member of each agent.register call so far
// (nil for a call without it) and the facts stored.
func (f *fakeServer) registered() ([]map[string]string, map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.registers), f.machine
}

// streamed returns run's stream as stored and the chunks received for it.
func (f *fakeServer) streamed(run int64) (string, []gotChunk) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var cs []gotChunk
	for _, c := range f.chunks {
		if c.run == run {
			cs = append(cs, c)
		}
	}
	return string(f.output[run]), cs
}
