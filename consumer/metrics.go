package consumer

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"customactions/auth"
	"customactions/events"
)

// Metrics are the Prometheus metrics of a Service.
//
// No label value is taken from a producer as it is, so producers cannot
// grow the number of series (and the memory of Prometheus and of this
// process):
//
//   - source is inbox, bot or test; anything else is "other".
//   - status is succeeded, failed, rejected or breaker_open; anything else
//     is "other".
//   - action is one of at most MaxActionSeries distinct action ids per
//     process (WithMaxActionSeries; 1000 by default), in the order they are
//     first seen; the ones after are counted as "_other". A rejected
//     trigger never adds an action id: it is counted under its action only
//     if that action is counted already, else under "_invalid" (as is any
//     id that is not a valid action id). An action whose id is "_other" or
//     "_invalid" shares that label.
//   - token is bound the same way (WithMaxTokenSeries; 1000 by default).
//     actions_token_health (Service.Collector) is 1 for the current status
//     of each oauth2 token and 0 for the others; tokens past the bound
//     share "_other", whose value is then the number of them in a status.
//   - to (actions_token_health_changes_total) is ok, degraded or
//     reauthorization_required; anything else is "other".
//
// So actions_triggers_total has at most (MaxActionSeries+2)·4·5 series.
type Metrics struct {
	triggers       *prometheus.CounterVec
	callDuration   *prometheus.HistogramVec
	attempts       *prometheus.CounterVec
	refreshes      *prometheus.CounterVec
	refreshFailed  *prometheus.CounterVec
	deadLettered   prometheus.Counter
	breakerRejects *prometheus.CounterVec
	healthChanges  *prometheus.CounterVec

	actions *labelBound
	tokens  *labelBound
}

// DefaultMaxSeries is the default of WithMaxActionSeries and
// WithMaxTokenSeries.
const DefaultMaxSeries = 1000

// Label values that stand for many producer values (see Metrics).
const (
	labelOther    = "other"                // a source or status outside the known set
	labelOverflow = "_other"               // an action or token id past the bound
	labelInvalid  = events.InvalidActionID // a rejected trigger's unknown action, an invalid id
)

// MetricsOption configures NewMetrics.
type MetricsOption func(*metricsConfig)

type metricsConfig struct {
	maxActions, maxTokens int
}

// WithMaxActionSeries bounds the distinct action ids used as label values
// to n (n <= 0 means DefaultMaxSeries); later ones are counted as "_other".
func WithMaxActionSeries(n int) MetricsOption {
	return func(c *metricsConfig) { c.maxActions = n }
}

// WithMaxTokenSeries bounds the distinct token ids used as label values to
// n (n <= 0 means DefaultMaxSeries); later ones are counted as "_other".
func WithMaxTokenSeries(n int) MetricsOption {
	return func(c *metricsConfig) { c.maxTokens = n }
}

// NewMetrics registers the service's metrics on reg.
func NewMetrics(reg prometheus.Registerer, opts ...MetricsOption) *Metrics {
	var c metricsConfig
	for _, o := range opts {
		o(&c)
	}
	m := &Metrics{
		actions: newLabelBound(c.maxActions),
		tokens:  newLabelBound(c.maxTokens),
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
		healthChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actions_token_health_changes_total", Help: "Changes of an oauth2 token's health made by this replica, by new status.",
		}, []string{"to"}),
	}
	reg.MustRegister(m.triggers, m.callDuration, m.attempts, m.refreshes, m.refreshFailed, m.deadLettered, m.breakerRejects, m.healthChanges)
	return m
}

func (m *Metrics) result(r *events.Result) {
	if m == nil {
		return
	}
	action := m.actions.value(r.ActionID, r.Status != events.StatusRejected)
	m.triggers.WithLabelValues(action, sourceLabel(r.Source), statusLabel(r.Status)).Inc()
	if r.Attempts > 0 {
		m.attempts.WithLabelValues(action).Add(float64(r.Attempts))
	}
	if r.Status == events.StatusBreakerOpen {
		m.breakerRejects.WithLabelValues(action).Inc()
	}
}

func (m *Metrics) call(action string, d time.Duration) {
	if m != nil {
		m.callDuration.WithLabelValues(m.actions.value(action, true)).Observe(d.Seconds())
	}
}

func (m *Metrics) refreshed(token string) {
	if m != nil {
		m.refreshes.WithLabelValues(m.tokens.value(token, true)).Inc()
	}
}

func (m *Metrics) refreshFailure(token string) {
	if m != nil {
		m.refreshFailed.WithLabelValues(m.tokens.value(token, true)).Inc()
	}
}

func (m *Metrics) dead() {
	if m != nil {
		m.deadLettered.Inc()
	}
}

// TokenHealthHook returns a hook for auth.Manager.OnHealthChange that
// counts the change in actions_token_health_changes_total and then calls
// next (when not nil). Each change is made, and so counted, by one replica:
// the sum over replicas is the number of changes. With m nil it returns
// next.
func (m *Metrics) TokenHealthHook(next func(auth.HealthChange)) func(auth.HealthChange) {
	if m == nil {
		return next
	}
	return func(c auth.HealthChange) {
		m.healthChanges.WithLabelValues(healthLabel(c.To)).Inc()
		if next != nil {
			next(c)
		}
	}
}

// healthStatuses are the statuses of actions_token_health, in order.
var healthStatuses = []string{auth.HealthOK, auth.HealthDegraded, auth.HealthReauthorizationRequired}

func healthLabel(s string) string {
	for _, h := range healthStatuses {
		if s == h {
			return s
		}
	}
	return labelOther
}

func sourceLabel(s string) string {
	if events.ValidSource(s) {
		return s
	}
	return labelOther
}

func statusLabel(s string) string {
	switch s {
	case events.StatusSucceeded, events.StatusFailed, events.StatusRejected, events.StatusBreakerOpen:
		return s
	}
	return labelOther
}

// labelBound hands out the label values of ids (action or token ids): at
// most max distinct ids are admitted and keep their own value, the ids
// after them share labelOverflow. An id that is not valid (events.ValidID)
// is labelInvalid.
type labelBound struct {
	max  int
	mu   sync.RWMutex
	seen map[string]struct{}
}

func newLabelBound(n int) *labelBound {
	if n <= 0 {
		n = DefaultMaxSeries
	}
	return &labelBound{max: n, seen: make(map[string]struct{})}
}

// value returns the label value of id. With admit false an id not admitted
// yet is labelInvalid and is not admitted.
func (b *labelBound) value(id string, admit bool) string {
	b.mu.RLock()
	_, ok := b.seen[id]
	b.mu.RUnlock()
	switch {
	case ok:
		return id
	case !admit || !events.ValidID(id):
		return labelInvalid
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[id]; ok {
		return id
	}
	if len(b.seen) >= b.max {
		return labelOverflow
	}
	b.seen[id] = struct{}{}
	return id
}

// WithMetrics records the service's metrics in m.
func WithMetrics(m *Metrics) Option { return func(s *Service) { s.metrics = m } }

// serviceCollector reports the in-flight count and the durable consumer's
// pending and ack-pending counts, read at scrape time (at most once a
// second).
type serviceCollector struct {
	svc        *Service
	inFlight   *prometheus.Desc
	parked     *prometheus.Desc
	pending    *prometheus.Desc
	ackPending *prometheus.Desc
	redeliver  *prometheus.Desc
	health     *prometheus.Desc

	mu      sync.Mutex
	at      time.Time
	counts  [3]float64
	counted bool

	// The health of oauth2 tokens, read from their connection records
	// (every replica sees the same) at most every healthEvery.
	healthMu    sync.Mutex
	healthAt    time.Time
	healthSeen  map[tokenStatus]float64
	healthBound *labelBound
}

// tokenStatus is a series of actions_token_health.
type tokenStatus struct{ token, status string }

// healthEvery is how often a scrape reads the tokens' health again.
const healthEvery = 5 * time.Second

// Collector returns a collector of the service's gauges; register it next
// to NewMetrics. Besides the consumer's counts it reports
// actions_token_health{token,status}: for each oauth2 token with a
// connection, 1 for its current status (ok, degraded,
// reauthorization_required) and 0 for the others, read from the shared
// connection records (at most every 5 s), so every replica reports the
// same. Token labels share the bound of the service's Metrics.
func (s *Service) Collector() prometheus.Collector {
	bound := newLabelBound(0)
	if s.metrics != nil {
		bound = s.metrics.tokens
	}
	return &serviceCollector{svc: s, healthBound: bound,
		health: prometheus.NewDesc("actions_token_health", "Health of an oauth2 token: 1 for its current status, 0 for the others.",
			[]string{"token", "status"}, nil),
		inFlight:   prometheus.NewDesc("actions_in_flight", "Triggers being executed by this replica.", nil, nil),
		parked:     prometheus.NewDesc("actions_parked", "Triggers of actions at their bulkhead bound waiting on this replica (they hold no worker).", nil, nil),
		pending:    prometheus.NewDesc("actions_consumer_pending", "Triggers in the stream (and its partitions) not yet delivered to any replica.", nil, nil),
		ackPending: prometheus.NewDesc("actions_consumer_ack_pending", "Triggers delivered and not yet acked, across replicas.", nil, nil),
		redeliver:  prometheus.NewDesc("actions_consumer_redelivered", "Triggers delivered more than once and not yet acked.", nil, nil),
	}
}

func (c *serviceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.inFlight
	ch <- c.parked
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.redeliver
	ch <- c.health
}

func (c *serviceCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(c.svc.InFlight()))
	ch <- prometheus.MustNewConstMetric(c.parked, prometheus.GaugeValue, float64(c.svc.Parked()))
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		// The trigger stream's consumer and its partitions' (summed).
		var counts [3]float64
		var err error
		for _, cons := range c.svc.res.triggerConsumers() {
			var info *jetstream.ConsumerInfo
			if info, err = cons.Info(ctx); err != nil {
				break
			}
			counts[0] += float64(info.NumPending)
			counts[1] += float64(info.NumAckPending)
			counts[2] += float64(info.NumRedelivered)
		}
		cancel()
		c.at = time.Now()
		if err == nil {
			c.counts = counts
			c.counted = true
		}
	}
	if c.counted {
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, c.counts[0])
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, c.counts[1])
		ch <- prometheus.MustNewConstMetric(c.redeliver, prometheus.GaugeValue, c.counts[2])
	}
	for k, v := range c.tokenHealth() {
		ch <- prometheus.MustNewConstMetric(c.health, prometheus.GaugeValue, v, k.token, k.status)
	}
}

// tokenHealth returns the series of actions_token_health, read again when
// the last read is older than healthEvery. A failed read keeps the last.
func (c *serviceCollector) tokenHealth() map[tokenStatus]float64 {
	c.healthMu.Lock()
	defer c.healthMu.Unlock()
	if c.healthSeen != nil && time.Since(c.healthAt) < healthEvery {
		return c.healthSeen
	}
	c.healthAt = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	toks, err := c.svc.tokens.List(ctx)
	if err != nil {
		return c.healthSeen
	}
	seen := map[tokenStatus]float64{}
	for _, t := range toks {
		if t.Type != auth.TypeOAuth2 {
			continue
		}
		v, ok, err := c.svc.mgr.OAuth2View(ctx, t.ID)
		if err != nil || !ok {
			continue
		}
		label := c.healthBound.value(t.ID, true)
		for _, st := range healthStatuses {
			k := tokenStatus{label, st}
			if _, ok := seen[k]; !ok {
				seen[k] = 0
			}
			if v.Status == st {
				seen[k]++
			}
		}
	}
	c.healthSeen = seen
	return seen
}
