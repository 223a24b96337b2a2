package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/maintenance"
	"github.com/scirectl/scirectl/push"
	"github.com/scirectl/scirectl/runstate"
	"github.com/scirectl/scirectl/xmlrpc"
)

// /metrics serves the daemon's metrics in the Prometheus text format (SPEC
// §3, docs/metrics.md) from a registry of the server's own, never the
// process-wide default one. Like /healthz and /readyz it needs no token and
// takes no request slot: it exposes counts, durations and operation names
// only — never a user, client, host or job name, a fingerprint or a token —
// so it may be scraped by anything that can reach the port.
//
// Where the numbers come from:
//   - the RPC counters and histograms: a wrapper around the interceptor
//     (metrics.intercept), so every call of a registered method, each call
//     of a multicall too, is counted once with the fault code it ended with;
//   - the gate waits and holds: Server.enterGate, which the interceptor and
//     the rescuer use instead of gate.Enter; the gate's own counters
//     (gate.Stats) are read at scrape time;
//   - the store query durations: instrumentedStore, a decorator around
//     db.Store that times the hot methods;
//   - runs by state and clients by status: one aggregate query each, at
//     scrape time (db.Store's RunCounts and ClientCounts).

// metricsSeenWindow is how recently a client must have been seen to count
// in scire_agents_seen and scire_agents_polling.
const metricsSeenWindow = 5 * time.Minute

// metricsQueryTimeout bounds each aggregate query of a scrape.
const metricsQueryTimeout = 5 * time.Second

// Buckets, in seconds. RPCs and gate holds run from a millisecond to the
// gate's 30s default wait and beyond; store queries from 100µs up.
var (
	rpcBuckets  = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	waitBuckets = []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 10, 30, 60}
	dbBuckets   = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
)

// metrics holds the server's registry and the instruments fed by the
// request path. A nil *metrics (Config.DisableMetrics) records nothing.
type metrics struct {
	reg         *prometheus.Registry
	handler     http.Handler
	rpcRequests *prometheus.CounterVec   // method, code
	rpcDuration *prometheus.HistogramVec // method
	gateWait    *prometheus.HistogramVec // operation, class
	gateHold    *prometheus.HistogramVec // operation, class
	dbDuration  *prometheus.HistogramVec // method
	dbErrors    *prometheus.CounterVec   // method
	rescuer     *prometheus.CounterVec   // kind
	push        *prometheus.CounterVec   // outcome
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		rpcRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scire_rpc_requests_total",
			Help: "XML-RPC method calls (each call of a system.multicall counts), by method and fault code (0: success).",
		}, []string{"method", "code"}),
		rpcDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "scire_rpc_duration_seconds",
			Help:    "Duration of XML-RPC method calls, authentication, gate wait and work included, by method (agent.getJobs is dispatch, agent.reportStatus is report).",
			Buckets: rpcBuckets,
		}, []string{"method"}),
		gateWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "scire_gate_wait_seconds",
			Help:    "Time from asking the gate to admission, for admitted operations, by operation and gate class.",
			Buckets: waitBuckets,
		}, []string{"operation", "class"}),
		gateHold: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "scire_gate_hold_seconds",
			Help:    "Time from admission by the gate to release, by operation and gate class.",
			Buckets: rpcBuckets,
		}, []string{"operation", "class"}),
		dbDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "scire_db_query_duration_seconds",
			Help:    "Duration of store calls on the hot paths (dispatch, ack, report, submit, sweeps, authentication) and of the scrape's aggregate queries, by store method.",
			Buckets: dbBuckets,
		}, []string{"method"}),
		dbErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scire_db_errors_total",
			Help: "Store calls timed in scire_db_query_duration_seconds that failed for a reason other than not found, conflict or invalid input, by store method.",
		}, []string{"method"}),
		rescuer: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scire_rescuer_changes_total",
			Help: "Runs changed by the rescuer (startup recovery, periodic sweeps, takeover of a dead daemon's runs), by kind of change.",
		}, []string{"kind"}),
		push: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scire_push_total",
			Help: "Pushes (agent.pollNow) to daemon-mode agents by final outcome: ok, failed (given up after retries), skipped (not an active daemon-mode client), woken (waiting in agent.getJobs on this daemon: woken there, nothing sent).",
		}, []string{"outcome"}),
	}
	// The push outcomes (package push) exist from the start, at 0, so that
	// rate() and alerts work before the first push.
	for _, o := range []string{push.OK, push.Failed, push.Skipped, push.Woken} {
		m.push.WithLabelValues(o)
	}
	for _, k := range []string{"requeued", "failed (max attempts)", "failed (lost)", "expired"} {
		m.rescuer.WithLabelValues(k)
	}
	m.reg.MustRegister(m.rpcRequests, m.rpcDuration, m.gateWait, m.gateHold, m.dbDuration, m.dbErrors, m.rescuer, m.push)
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// initMetrics sets up /metrics unless the configuration turns it off: the
// registry, the store decorator (s.store becomes the instrumented store),
// the interceptor wrapper and the scrape-time collector. New calls it once
// the interceptor is in place and before anything uses s.store for the
// request path.
func (s *Server) initMetrics() {
	if s.cfg.DisableMetrics {
		return
	}
	m := newMetrics()
	raw := s.store
	s.store = m.instrumentStore(raw)
	if s.rpc.Intercept != nil {
		s.rpc.Intercept = m.intercept(s.rpc.Intercept)
	}
	if s.rpc.InterceptBatch != nil {
		s.rpc.InterceptBatch = m.interceptBatch(s.rpc.InterceptBatch)
	}
	version := s.cfg.Version
	if version == "" {
		version = "unknown"
	}
	m.reg.MustRegister(&stateCollector{s: s, m: m, store: raw},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scire_build_info", Help: "Always 1; the label is the daemon's version.",
			ConstLabels: prometheus.Labels{"version": version},
		}, func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scire_agents_waiting",
			Help: "Calls of agent.getJobs waiting for work on this daemon now (its wait parameter: the long poll).",
		}, func() float64 { return float64(s.waiting.Waiting()) }))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      metricsLog{s},
		ErrorHandling: promhttp.ContinueOnError, // a failed query leaves its gauge out, not the rest
		Registry:      m.reg,
		// /metrics takes no request slot (limits.go); this bounds what
		// scrapers can cost instead: two scrapes at once, the others 503.
		MaxRequestsInFlight: 2,
		Timeout:             2 * metricsQueryTimeout,
	})
	s.metrics = m
}

// metricsHandler serves /metrics, or 404 when metrics are disabled.
func (s *Server) metricsHandler() http.Handler {
	if s.metrics == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "metrics are disabled in this server's configuration", http.StatusNotFound)
		})
	}
	return s.metrics.handler
}

type metricsLog struct{ s *Server }

func (l metricsLog) Println(v ...any) {
	l.s.log.Warn("metrics", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}

// intercept wraps the server's interceptor: the call's duration and its
// outcome. The method is always a registered one (xmlrpc answers an unknown
// method before the interceptor), so the label's values are bounded by the
// operation registry. A panic counts as fault 500 and goes on unwinding.
func (m *metrics) intercept(next func(context.Context, string, xmlrpc.Params, xmlrpc.Handler) (any, error)) func(context.Context, string, xmlrpc.Params, xmlrpc.Handler) (any, error) {
	return func(ctx context.Context, method string, p xmlrpc.Params, h xmlrpc.Handler) (res any, err error) {
		start := time.Now()
		code := xmlrpc.CodeInternal
		defer func() {
			m.rpcRequests.WithLabelValues(method, strconv.Itoa(code)).Inc()
			m.rpcDuration.WithLabelValues(method).Observe(time.Since(start).Seconds())
		}()
		res, err = next(ctx, method, p, h)
		code = 0
		if err != nil {
			code = xmlrpc.CodeInternal
			if f, ok := xmlrpc.AsFault(err); ok {
				code = f.Code
			}
		}
		return res, err
	}
}

// interceptBatch is intercept for a batch (xmlrpc.Method.Batch): each
// call counts with its own outcome, and with the batch's duration, which is
// how long each waited for its result.
func (m *metrics) interceptBatch(next func(context.Context, string, []xmlrpc.Params, xmlrpc.BatchHandler) ([]any, []error)) func(context.Context, string, []xmlrpc.Params, xmlrpc.BatchHandler) ([]any, []error) {
	return func(ctx context.Context, method string, ps []xmlrpc.Params, h xmlrpc.BatchHandler) (res []any, errs []error) {
		start := time.Now()
		panicked := true
		defer func() {
			d := time.Since(start).Seconds()
			for i := range ps {
				code := xmlrpc.CodeInternal
				if !panicked && i < len(errs) {
					code = 0
					if errs[i] != nil {
						code = xmlrpc.CodeInternal
						if f, ok := xmlrpc.AsFault(errs[i]); ok {
							code = f.Code
						}
					}
				}
				m.rpcRequests.WithLabelValues(method, strconv.Itoa(code)).Inc()
				m.rpcDuration.WithLabelValues(method).Observe(d)
			}
		}()
		res, errs = next(ctx, method, ps, h)
		panicked = false
		return res, errs
	}
}

// gateTicket is a gate ticket that, when released, records how long it was
// held.
type gateTicket struct {
	*gate.Ticket
	m        *metrics
	op       string
	class    string
	admitted time.Time
	released bool
}

// Release gives the gate back and records the hold; like gate.Ticket's,
// calling it again does nothing. The holder calls it from one goroutine.
func (t *gateTicket) Release() {
	t.Ticket.Release()
	if t.m != nil && !t.released {
		t.released = true
		t.m.gateHold.WithLabelValues(t.op, t.class).Observe(time.Since(t.admitted).Seconds())
	}
}

// enterGate is gate.Enter with the wait (asking to admission) recorded;
// the ticket records the hold when released. Refusals are counted by the
// gate itself (scire_gate_busy_total).
func (s *Server) enterGate(ctx context.Context, r gate.Request) (*gateTicket, error) {
	start := time.Now()
	t, err := s.gate.Enter(ctx, r)
	if err != nil {
		return nil, err
	}
	gt := &gateTicket{Ticket: t, m: s.metrics, op: r.Name, class: r.Class.String()}
	if gt.m != nil {
		gt.admitted = time.Now()
		gt.m.gateWait.WithLabelValues(gt.op, gt.class).Observe(gt.admitted.Sub(start).Seconds())
	}
	return gt, nil
}

// instrumentRescuer counts the rescuer's changes by kind and records its
// gate waits and holds (operation "rescuer.sweep", see rescue.go), keeping
// whatever the rescuer did before.
func (s *Server) instrumentRescuer(r *maintenance.Rescuer) *maintenance.Rescuer {
	m := s.metrics
	if m == nil {
		return r
	}
	if enter := r.Enter; enter != nil {
		r.Enter = func(ctx context.Context) (func(), error) {
			start := time.Now()
			release, err := enter(ctx)
			if err != nil {
				return nil, err
			}
			admitted := time.Now()
			class := gate.NonModifier.String()
			m.gateWait.WithLabelValues("rescuer.sweep", class).Observe(admitted.Sub(start).Seconds())
			return func() {
				release()
				m.gateHold.WithLabelValues("rescuer.sweep", class).Observe(time.Since(admitted).Seconds())
			}, nil
		}
	}
	onChange := r.OnChange
	r.OnChange = func(changes []db.Change) {
		for _, c := range changes {
			m.rescuer.WithLabelValues(maintenance.Kind(c)).Inc()
		}
		if onChange != nil {
			onChange(changes)
		}
	}
	return r
}

// stateCollector reads, at scrape time, what is cheaper to ask for than to
// track: the gate's counters, runs and clients in the store, and the agents
// polling this daemon.
type stateCollector struct {
	s     *Server
	m     *metrics
	store db.Store // the undecorated store, for the optional interfaces
}

var (
	descRuns = prometheus.NewDesc("scire_runs",
		"Runs in the database by state (all daemons sharing the database report the same; aggregate with max, not sum).",
		[]string{"state"}, nil)
	descClients = prometheus.NewDesc("scire_clients",
		"Clients (agents) in the database by enrollment status (database-wide, like scire_runs).",
		[]string{"status"}, nil)
	descAgentsSeen = prometheus.NewDesc("scire_agents_seen",
		"Active clients seen (registered, polled or sent a heartbeat, to any daemon) in the last 5 minutes (database-wide, like scire_runs).",
		nil, nil)
	descAgentsPolling = prometheus.NewDesc("scire_agents_polling",
		"Distinct clients that asked this daemon for jobs (agent.getJobs) in the last 5 minutes.",
		nil, nil)
	descGateBusy = prometheus.NewDesc("scire_gate_busy_total",
		"Gate refusals (fault 423: no-wait, wait limit reached, cluster lock busy), all operations; per method see scire_rpc_requests_total{code=\"423\"}.",
		nil, nil)
	descGateAdmitted = prometheus.NewDesc("scire_gate_admitted_total",
		"Operations admitted by the gate, at once or after waiting.", nil, nil)
	descGateWaited = prometheus.NewDesc("scire_gate_waited_total",
		"Operations admitted by the gate after waiting in its queue.", nil, nil)
	descGateCancelled = prometheus.NewDesc("scire_gate_cancelled_total",
		"Operations cancelled by ops.cancel, running or waiting.", nil, nil)
	descGateAbandoned = prometheus.NewDesc("scire_gate_abandoned_total",
		"Operations whose caller went away while they waited for the gate.", nil, nil)
	descGateHolders = prometheus.NewDesc("scire_gate_holders",
		"Operations holding the gate now, by class.", []string{"class"}, nil)
	descGateWaiting = prometheus.NewDesc("scire_gate_waiting",
		"Operations waiting in the gate's queue now.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRuns, descClients, descAgentsSeen, descAgentsPolling, descGateBusy,
		descGateAdmitted, descGateWaited, descGateCancelled, descGateAbandoned, descGateHolders, descGateWaiting} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.gate.Stats()
	ch <- prometheus.MustNewConstMetric(descGateBusy, prometheus.CounterValue, float64(st.Busy))
	ch <- prometheus.MustNewConstMetric(descGateAdmitted, prometheus.CounterValue, float64(st.Admitted))
	ch <- prometheus.MustNewConstMetric(descGateWaited, prometheus.CounterValue, float64(st.Waited))
	ch <- prometheus.MustNewConstMetric(descGateCancelled, prometheus.CounterValue, float64(st.Cancelled))
	ch <- prometheus.MustNewConstMetric(descGateAbandoned, prometheus.CounterValue, float64(st.Abandoned))
	modifier := 0.0
	if st.Modifier {
		modifier = 1
	}
	ch <- prometheus.MustNewConstMetric(descGateHolders, prometheus.GaugeValue, float64(st.Readers), gate.NonModifier.String())
	ch <- prometheus.MustNewConstMetric(descGateHolders, prometheus.GaugeValue, modifier, gate.Modifier.String())
	ch <- prometheus.MustNewConstMetric(descGateWaiting, prometheus.GaugeValue, float64(st.Waiting))

	now := time.Now()
	polling := c.s.seen.count(now.Add(-metricsSeenWindow))
	ch <- prometheus.MustNewConstMetric(descAgentsPolling, prometheus.GaugeValue, float64(polling))

	ctx, cancel := context.WithTimeout(context.Background(), metricsQueryTimeout)
	defer cancel()
	start := time.Now()
	counts, err := c.store.RunCounts(ctx)
	c.m.observeDB("RunCounts", start, err)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descRuns, err)
	} else {
		for _, state := range runstate.All {
			ch <- prometheus.MustNewConstMetric(descRuns, prometheus.GaugeValue, float64(counts[state]), string(state))
		}
	}
	c.s.flushSeen(ctx)
	start = time.Now()
	byStatus, seen, err := c.store.ClientCounts(ctx, now.Add(-metricsSeenWindow).UTC())
	c.m.observeDB("ClientCounts", start, err)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descClients, err)
	} else {
		for _, status := range []db.ClientStatus{db.ClientPending, db.ClientActive, db.ClientRejected, db.ClientRevoked} {
			ch <- prometheus.MustNewConstMetric(descClients, prometheus.GaugeValue, float64(byStatus[status]), string(status))
		}
		ch <- prometheus.MustNewConstMetric(descAgentsSeen, prometheus.GaugeValue, float64(seen))
	}
}

// observeDB records one store call: its duration, and whether it failed
// for a reason other than the caller's (not found, conflict, invalid).
func (m *metrics) observeDB(method string, start time.Time, err error) {
	m.dbDuration.WithLabelValues(method).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, db.ErrNotFound) && !errors.Is(err, db.ErrConflict) && !errors.Is(err, db.ErrInvalid) &&
		!errors.Is(err, context.Canceled) {
		m.dbErrors.WithLabelValues(method).Inc()
	}
}

// instrumentedStore times the hot store methods; every other method is the
// embedded store's own. It is what s.store holds when metrics are on.
type instrumentedStore struct {
	db.Store
	m *metrics
}

// instrumentStore wraps st. db.Store has no optional parts, so the
// wrapper is a Store like any other and wrapping changes no behaviour.
func (m *metrics) instrumentStore(st db.Store) db.Store {
	return &instrumentedStore{Store: st, m: m}
}

func (s *instrumentedStore) ClaimRuns(ctx context.Context, c db.Claim) ([]db.Dispatch, error) {
	start := time.Now()
	out, err := s.Store.ClaimRuns(ctx, c)
	s.m.observeDB("ClaimRuns", start, err)
	return out, err
}

func (s *instrumentedStore) AckRuns(ctx context.Context, clientID int64, runIDs []int64, at time.Time) (db.AckResult, error) {
	start := time.Now()
	out, err := s.Store.AckRuns(ctx, clientID, runIDs, at)
	s.m.observeDB("AckRuns", start, err)
	return out, err
}

func (s *instrumentedStore) ReportRuns(ctx context.Context, clientID int64, reports []db.Report, at time.Time) ([]db.ReportResult, error) {
	start := time.Now()
	out, err := s.Store.ReportRuns(ctx, clientID, reports, at)
	s.m.observeDB("ReportRuns", start, err)
	return out, err
}

func (s *instrumentedStore) RenewRuns(ctx context.Context, clientID int64, runIDs []int64, at time.Time) (db.RenewResult, error) {
	start := time.Now()
	out, err := s.Store.RenewRuns(ctx, clientID, runIDs, at)
	s.m.observeDB("RenewRuns", start, err)
	return out, err
}

func (s *instrumentedStore) SubmitJobs(ctx context.Context, js []db.NewJob, audit []db.AuditEntry) ([]db.Job, error) {
	start := time.Now()
	out, err := s.Store.SubmitJobs(ctx, js, audit)
	s.m.observeDB("SubmitJobs", start, err)
	return out, err
}

func (s *instrumentedStore) Sweep(ctx context.Context, o db.SweepOptions) ([]db.Change, error) {
	start := time.Now()
	out, err := s.Store.Sweep(ctx, o)
	s.m.observeDB("Sweep", start, err)
	return out, err
}

func (s *instrumentedStore) RequeueServer(ctx context.Context, serverID int64, at time.Time, dryRun bool) ([]db.Change, error) {
	start := time.Now()
	out, err := s.Store.RequeueServer(ctx, serverID, at, dryRun)
	s.m.observeDB("RequeueServer", start, err)
	return out, err
}

func (s *instrumentedStore) CancelJob(ctx context.Context, jobID int64, at time.Time, reason string) ([]db.Change, error) {
	start := time.Now()
	out, err := s.Store.CancelJob(ctx, jobID, at, reason)
	s.m.observeDB("CancelJob", start, err)
	return out, err
}

func (s *instrumentedStore) CancelledRuns(ctx context.Context, clientID int64, since time.Time) ([]int64, error) {
	start := time.Now()
	out, err := s.Store.CancelledRuns(ctx, clientID, since)
	s.m.observeDB("CancelledRuns", start, err)
	return out, err
}

func (s *instrumentedStore) ClientByFingerprint(ctx context.Context, fingerprint string) (db.Client, error) {
	start := time.Now()
	out, err := s.Store.ClientByFingerprint(ctx, fingerprint)
	s.m.observeDB("ClientByFingerprint", start, err)
	return out, err
}

func (s *instrumentedStore) TouchClients(ctx context.Context, seen map[int64]time.Time) error {
	start := time.Now()
	err := s.Store.TouchClients(ctx, seen)
	s.m.observeDB("TouchClients", start, err)
	return err
}

func (s *instrumentedStore) TokenByID(ctx context.Context, id int64) (db.Token, db.User, error) {
	start := time.Now()
	t, u, err := s.Store.TokenByID(ctx, id)
	s.m.observeDB("TokenByID", start, err)
	return t, u, err
}

func (s *instrumentedStore) Run(ctx context.Context, id int64) (db.Run, error) {
	start := time.Now()
	out, err := s.Store.Run(ctx, id)
	s.m.observeDB("Run", start, err)
	return out, err
}

func (s *instrumentedStore) RecordOperation(ctx context.Context, op db.AuditEntry) error {
	start := time.Now()
	err := s.Store.RecordOperation(ctx, op)
	s.m.observeDB("RecordOperation", start, err)
	return err
}

func (s *instrumentedStore) HeartbeatServer(ctx context.Context, id int64, at time.Time) error {
	start := time.Now()
	err := s.Store.HeartbeatServer(ctx, id, at)
	s.m.observeDB("HeartbeatServer", start, err)
	return err
}
