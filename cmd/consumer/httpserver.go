package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"customactions/breaker"
	"customactions/consumer"
	"customactions/internal/webui"
)

// breakerCollector reports actions_breaker_state (1 half-open, 2 open) per
// action whose breaker is not closed, from the breaker's watch, and
// actions_breakers{state} counts. Action ids come from producers, so
// closed breakers (the many) have no series of their own, and at most
// maxBreakerSeries open ones are reported, by action id.
type breakerCollector struct {
	br     *breaker.Breaker
	desc   *prometheus.Desc
	counts *prometheus.Desc
}

const maxBreakerSeries = 1000

func (c breakerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc; ch <- c.counts }
func (c breakerCollector) Collect(ch chan<- prometheus.Metric) {
	byState := map[breaker.State]int{}
	var notClosed []breaker.Status
	for _, st := range c.br.Snapshot() {
		byState[st.State]++
		if st.State != breaker.Closed {
			notClosed = append(notClosed, st)
		}
	}
	slices.SortFunc(notClosed, func(a, b breaker.Status) int { return strings.Compare(a.ActionID, b.ActionID) })
	for _, st := range notClosed[:min(len(notClosed), maxBreakerSeries)] {
		v := 2.0
		if st.State == breaker.HalfOpen {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, st.ActionID)
	}
	for _, s := range []breaker.State{breaker.Closed, breaker.HalfOpen, breaker.Open} {
		ch <- prometheus.MustNewConstMetric(c.counts, prometheus.GaugeValue, float64(byState[s]), s.String())
	}
}

// readiness reports why the replica is not ready, or nil.
type readiness func(ctx context.Context) error

func checkReady(nc *nats.Conn, svc *consumer.Service, res *consumer.Resources) readiness {
	return func(ctx context.Context) error {
		if nc.Status() != nats.CONNECTED {
			return errors.New("not connected to NATS: " + nc.Status().String())
		}
		if !svc.Running() {
			return errors.New("the consumer is not running")
		}
		if _, err := res.Triggers.Info(ctx); err != nil {
			return errors.New("triggers consumer unreachable: " + err.Error())
		}
		if _, err := res.Tokens.Status(ctx); err != nil {
			return errors.New("tokens bucket unreachable: " + err.Error())
		}
		if _, err := res.Breakers.Status(ctx); err != nil {
			return errors.New("breakers bucket unreachable: " + err.Error())
		}
		return nil
	}
}

// httpOption changes what startHTTP serves.
type httpOption func(*httpExtras)

type httpExtras struct {
	pprof bool
	ui    *webui.Server
}

// withPprof serves the Go profiles at /debug/pprof/ when enabled. When ui
// is not nil (the admin UI is on, on the same port) they are served only to
// an admin logged in to it; without the UI they are open to whoever reaches
// the port.
func withPprof(enabled bool, ui *webui.Server) httpOption {
	return func(e *httpExtras) { e.pprof, e.ui = enabled, ui }
}

// startHTTP serves /metrics, /healthz and /readyz on addr until ctx ends,
// and whatever extra adds (the web UI). /debug/pprof/ is off unless an
// option turns it on (withPprof). Every response carries the web UI's
// security headers.
func startHTTP(ctx context.Context, addr string, reg *prometheus.Registry, ready readiness, log *slog.Logger, extra func(*http.ServeMux), opts ...httpOption) (string, error) {
	var ex httpExtras
	for _, o := range opts {
		o(&ex)
	}
	mux := http.NewServeMux()
	if extra != nil {
		extra(mux)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"alive"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		cctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := ready(cctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	if ex.pprof {
		servePprof(mux, ex.ui, log)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: webui.SecureHeaders(mux), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("metrics and health on http", "addr", ln.Addr().String())
	return ln.Addr().String(), nil
}

// servePprof adds the profiles (index and named profiles, CPU profile,
// execution trace) to mux, behind ui's login when ui is not nil.
func servePprof(mux *http.ServeMux, ui *webui.Server, log *slog.Logger) {
	guard := func(h http.HandlerFunc) http.Handler { return h }
	if ui != nil {
		guard = func(h http.HandlerFunc) http.Handler { return ui.RequireSession(h) }
		log.Info("profiles on http, behind the web UI login", "path", "/debug/pprof/")
	} else {
		log.Warn("profiles on http without a login: keep the port internal", "path", "/debug/pprof/")
	}
	mux.Handle("GET /debug/pprof/", guard(pprof.Index))
	mux.Handle("GET /debug/pprof/profile", guard(pprof.Profile))
	mux.Handle("GET /debug/pprof/trace", guard(pprof.Trace))
}

// registerCollectors adds the runtime, process, service and breaker
// collectors to reg.
func registerCollectors(reg *prometheus.Registry, svc *consumer.Service, br *breaker.Breaker) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		svc.Collector(), breakerCollector{br: br,
			desc:   prometheus.NewDesc("actions_breaker_state", "Circuit breaker state per action that is not closed: 1 half-open, 2 open.", []string{"action"}, nil),
			counts: prometheus.NewDesc("actions_breakers", "Breakers held in memory by this replica (the actions it called lately), by state.", []string{"state"}, nil)})
}
