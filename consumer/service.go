package consumer

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"customactions/auth"
	"customactions/breaker"
	"customactions/events"
	"customactions/internal/netguard"
)

// Breaker pauses failing actions; *breaker.Breaker satisfies it. Allow
// returns an error wrapping breaker.ErrOpen when the action is paused, and
// otherwise a done function to call once with the outcome of the live
// call.
type Breaker interface {
	Allow(ctx context.Context, actionID string) (done func(breaker.Outcome), err error)
	// Open reports, from memory, that live calls of the action are refused
	// now (open, or half-open with its probe taken).
	Open(actionID string) bool
}

// Service executes triggers from the shared durable consumer.
type Service struct {
	cfg       Config
	js        jetstream.JetStream
	res       *Resources
	subjects  events.Subjects
	pub       *events.Publisher
	tokens    *auth.Store
	mgr       *auth.Manager
	auth      *auth.Authenticator
	client    *http.Client
	breaker   Breaker
	throttler Throttler
	limiter   Limiter
	resume    gates
	lastPause sync.Map // action id -> time.Time: the end of its last pause seen here
	metrics   *Metrics
	tracer    trace.Tracer // nil when tracing is off (WithTracerProvider)
	log       *slog.Logger
	now       func() time.Time
	rejected  rateLimiter
	// recent: keep a copy of each valid trigger (WithRecentTriggers).
	recent bool

	// beforeAck, when set, is called before a trigger is acked; returning
	// false skips the ack, as a crash right before it would.
	beforeAck func(jetstream.Msg) bool

	holds  *holds
	bulk   *bulkhead
	ready  chan struct{}
	budget *responseBudget
	// maxResult is the largest encoded result a message may carry: the
	// server's max_payload less room for headers.
	maxResult int
	inFlight  atomic.Int64
	processed atomic.Int64
	running   atomic.Bool
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the process logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithHTTPClient sets the client of action requests (default: a keep-alive
// client guarded by netguard with private networks refused).
func WithHTTPClient(c *http.Client) Option { return func(s *Service) { s.client = c } }

// WithBreaker sets the circuit breaker (default: none, every call goes
// through). A breaker that is also a Throttler holds actions back after
// their API asked for a pause.
func WithBreaker(b Breaker) Option {
	return func(s *Service) {
		s.breaker = b
		if th, ok := b.(Throttler); ok {
			s.throttler = th
		}
		if l, ok := b.(Limiter); ok {
			s.limiter = l
		}
	}
}

// WithClock sets the clock of timestamps (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithTokens sets the token store and the fetched-token manager (default:
// built over the buckets of Resources, without encryption).
func WithTokens(store *auth.Store, mgr *auth.Manager) Option {
	return func(s *Service) { s.tokens, s.mgr = store, mgr }
}

// New returns a Service over the resources made by Setup. cfg gets its
// defaults.
func New(js jetstream.JetStream, res *Resources, cfg Config, opts ...Option) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, js: js, res: res, subjects: events.NewSubjects(cfg.Prefix), ready: make(chan struct{}),
		log: slog.New(slog.DiscardHandler), now: time.Now, rejected: rateLimiter{every: time.Second}}
	for _, o := range opts {
		o(s)
	}
	s.pub = events.NewPublisher(js, s.subjects)
	if s.client == nil {
		s.client = netguard.Policy{}.Client(cfg.Workers)
	}
	guarded := *smallBuffers(s.client)
	guarded.CheckRedirect = guardRedirects(s.client.CheckRedirect)
	s.client = &guarded
	s.budget = newResponseBudget(cfg.ResponseMemory)
	s.bulk = newBulkhead(cfg.ActionConcurrency)
	s.maxResult = 1 << 20 // nats-server's default, until the connection says
	if nc := js.Conn(); nc != nil && nc.MaxPayload() > 0 {
		s.maxResult = int(nc.MaxPayload())
	}
	s.maxResult -= 1024 // the Nats-Msg-Id header and the protocol line
	if s.tokens == nil {
		s.tokens = auth.NewStore(res.Tokens, nil)
		s.mgr = auth.NewManager(res.Fetched, auth.NewFetcher(auth.WithHTTPClient(s.client)), auth.WithConnections(res.Connections, 0))
	}
	s.auth = auth.NewAuthenticator(s.tokens, s.mgr)
	s.mgr.OnHealthChange(s.metrics.TokenHealthHook(TokenHealthLog(s.pub, s.log, s.now)))
	return s, nil
}

// Tokens returns the token store.
func (s *Service) Tokens() *auth.Store { return s.tokens }

// Manager returns the fetched-token manager.
func (s *Service) Manager() *auth.Manager { return s.mgr }

// InFlight returns the number of triggers being executed now.
func (s *Service) InFlight() int64 { return s.inFlight.Load() }

// Processed returns the number of triggers finished (acked) since start.
func (s *Service) Processed() int64 { return s.processed.Load() }

// Parked returns the number of triggers waiting for their action's
// bulkhead (they hold no worker).
func (s *Service) Parked() int { return s.bulk.parkedCount() }

// Ready is closed once Run consumes triggers.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Running reports whether the consume loop is running.
func (s *Service) Running() bool { return s.running.Load() }

// Run consumes triggers until ctx ends, then stops pulling, finishes the
// triggers it holds within ShutdownTimeout (those still running then are
// nak'ed for another replica) and returns. The caller drains the
// connection afterwards so the last acks are flushed.
func (s *Service) Run(ctx context.Context) error {
	if err := s.tokens.Watch(ctx); err != nil {
		return stoppedOr(ctx, err)
	}
	if err := s.mgr.Watch(ctx); err != nil {
		return stoppedOr(ctx, err)
	}
	msgs, err := s.pull()
	if err != nil {
		return stoppedOr(ctx, err)
	}
	// Work goes on after ctx ends, until the shutdown bound.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	s.running.Store(true)
	defer s.running.Store(false)
	s.holds = newHolds(s.cfg.Workers)
	go s.holds.keepAlive(work, s.cfg.AckWait/3, func(at time.Time) {
		s.bulk.keepAlive(at, s.cfg.AckWait/3)
		if s.breaker != nil {
			// Parked triggers of an action whose breaker opened meanwhile
			// are answered breaker_open now; they need no slot.
			for _, p := range s.bulk.take(s.breaker.Open) {
				go s.run(work, p)
			}
		}
	})
	var wg sync.WaitGroup
	wg.Go(func() { s.workers(work, msgs) })
	s.log.Info("consuming triggers", "stream", s.cfg.TriggerStream, "partitions", len(s.res.Partitions), "durable", s.cfg.Durable, "workers", s.cfg.Workers,
		"action_concurrency", s.cfg.ActionConcurrency, "prefetch", s.cfg.Prefetch, "max_ack_pending", s.cfg.MaxAckPending)
	close(s.ready)

	<-ctx.Done()
	for _, p := range s.bulk.close() {
		_ = p.msg.Nak() // parked: another replica takes it at once
	}
	s.log.Info("shutting down: no new triggers, finishing in-flight ones", "in_flight", s.inFlight.Load(), "bound", s.cfg.ShutdownTimeout.String())
	msgs.Drain() // buffered triggers are still handed out and run
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.ShutdownTimeout):
		s.log.Warn("shutdown bound reached: cancelling in-flight triggers, they will be redelivered", "in_flight", s.inFlight.Load())
		cancelWork()
		<-done
	}
	s.log.Info("consumer stopped", "processed", s.processed.Load())
	return nil
}

// stoppedOr returns nil when ctx ended (a stop during start-up is a clean
// stop), else err.
func stoppedOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// rateLimiter lets one event per key through every period.
type rateLimiter struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
}

func (r *rateLimiter) allow(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]time.Time{}
	}
	if t, ok := r.last[key]; ok && now.Sub(t) < r.every {
		return false
	}
	r.last[key] = now
	return true
}
