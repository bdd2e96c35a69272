package consumer

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"customactions/events"
)

// Metrics are the Prometheus metrics of a Service. Labels carry action and
// token ids, so their cardinality is the number of actions and tokens.
type Metrics struct {
	triggers       *prometheus.CounterVec
	callDuration   *prometheus.HistogramVec
	attempts       *prometheus.CounterVec
	refreshes      *prometheus.CounterVec
	refreshFailed  *prometheus.CounterVec
	deadLettered   prometheus.Counter
	breakerRejects *prometheus.CounterVec
}

// NewMetrics registers the service's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		triggers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actions_triggers_total", Help: "Triggers finished, by action, source and result status.",
		}, []string{"action", "source", "status"}),
		callDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "actions_call_duration_seconds", Help: "Duration of calls to action URLs.",
			Buckets: []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"action"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actions_call_attempts_total", Help: "Calls made to action URLs (a trigger makes 1 or 2).",
		}, []string{"action"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actions_token_refreshes_total", Help: "Auth requests that fetched a token, made by this replica.",
		}, []string{"token"}),
		refreshFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actions_token_refresh_failures_total", Help: "Triggers failed because their token could not be refreshed.",
		}, []string{"token"}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actions_dead_lettered_total", Help: "Triggers moved to the dead-letter stream.",
		}),
		breakerRejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actions_breaker_rejected_total", Help: "Live triggers answered breaker_open.",
		}, []string{"action"}),
	}
	reg.MustRegister(m.triggers, m.callDuration, m.attempts, m.refreshes, m.refreshFailed, m.deadLettered, m.breakerRejects)
	return m
}

func (m *Metrics) result(r *events.Result) {
	if m == nil {
		return
	}
	m.triggers.WithLabelValues(r.ActionID, r.Source, r.Status).Inc()
	if r.Attempts > 0 {
		m.attempts.WithLabelValues(r.ActionID).Add(float64(r.Attempts))
	}
	if r.Status == events.StatusBreakerOpen {
		m.breakerRejects.WithLabelValues(r.ActionID).Inc()
	}
}

func (m *Metrics) call(action string, d time.Duration) {
	if m != nil {
		m.callDuration.WithLabelValues(action).Observe(d.Seconds())
	}
}

func (m *Metrics) refreshed(token string) {
	if m != nil {
		m.refreshes.WithLabelValues(token).Inc()
	}
}

func (m *Metrics) refreshFailure(token string) {
	if m != nil {
		m.refreshFailed.WithLabelValues(token).Inc()
	}
}

func (m *Metrics) dead() {
	if m != nil {
		m.deadLettered.Inc()
	}
}

// WithMetrics records the service's metrics in m.
func WithMetrics(m *Metrics) Option { return func(s *Service) { s.metrics = m } }

// serviceCollector reports the in-flight count and the durable consumer's
// pending and ack-pending counts, read at scrape time (at most once a
// second).
type serviceCollector struct {
	svc        *Service
	inFlight   *prometheus.Desc
	pending    *prometheus.Desc
	ackPending *prometheus.Desc
	redeliver  *prometheus.Desc

	mu      sync.Mutex
	at      time.Time
	counts  [3]float64
	counted bool
}

// Collector returns a collector of the service's gauges; register it next
// to NewMetrics.
func (s *Service) Collector() prometheus.Collector {
	return &serviceCollector{svc: s,
		inFlight:   prometheus.NewDesc("actions_in_flight", "Triggers being executed by this replica.", nil, nil),
		pending:    prometheus.NewDesc("actions_consumer_pending", "Triggers in the stream not yet delivered to any replica.", nil, nil),
		ackPending: prometheus.NewDesc("actions_consumer_ack_pending", "Triggers delivered and not yet acked, across replicas.", nil, nil),
		redeliver:  prometheus.NewDesc("actions_consumer_redelivered", "Triggers delivered more than once and not yet acked.", nil, nil),
	}
}

func (c *serviceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.inFlight
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.redeliver
}

func (c *serviceCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(c.svc.InFlight()))
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		info, err := c.svc.res.Triggers.Info(ctx)
		cancel()
		c.at = time.Now()
		if err == nil {
			c.counts = [3]float64{float64(info.NumPending), float64(info.NumAckPending), float64(info.NumRedelivered)}
			c.counted = true
		}
	}
	if c.counted {
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, c.counts[0])
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, c.counts[1])
		ch <- prometheus.MustNewConstMetric(c.redeliver, prometheus.GaugeValue, c.counts[2])
	}
}
