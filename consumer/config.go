package consumer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"customactions/events"
)

// Config is what a Service needs to know. A zero field takes the default
// written beside it; Validate reports what cannot be used.
//
// The names of the streams, the durable consumer and the buckets follow the
// prefix, so two installations with different prefixes share one NATS
// account without touching each other's objects. With the contract's
// prefix "actions" they are exactly the contract's names; for any other
// prefix p they are:
//
//	streams  UPPER(p)_TRIGGERS, UPPER(p)_RESULTS, UPPER(p)_LOGS, UPPER(p)_DEAD
//	durable  p-consumer
//	buckets  p_action_tokens, p_action_fetched_tokens, p_action_breakers
//
// (for "acme": ACME_TRIGGERS ... and acme_action_tokens ...). The bucket
// names keep the contract's names after "p_" rather than "p_tokens", so no
// prefix (not even "action") can land on the default installation's
// buckets. Stream names are upper-cased, so prefixes that differ only in
// case ("acme", "Acme") name the same streams; Setup then refuses the second
// one because the streams' subjects are not its own. A name set explicitly
// is kept.
type Config struct {
	Prefix        string // "actions"; letters, digits, '-' and '_' (one subject token)
	TriggerStream string // "ACTIONS_TRIGGERS", or UPPER(prefix)_TRIGGERS
	ResultStream  string // "ACTIONS_RESULTS", or UPPER(prefix)_RESULTS
	LogStream     string // "ACTIONS_LOGS", or UPPER(prefix)_LOGS
	DeadStream    string // "ACTIONS_DEAD", or UPPER(prefix)_DEAD
	TokensBucket  string // "action_tokens", or prefix_action_tokens
	FetchedBucket string // "action_fetched_tokens", or prefix_action_fetched_tokens
	BreakerBucket string // "action_breakers", or prefix_action_breakers
	Durable       string // "actions-consumer", or prefix-consumer

	Replicas int // 1 (3 on a cluster)
	// Partitions spreads triggers over that many streams (2 to 64), each
	// with its own leader, past the rate one stream leader carries. The
	// server's subject mapping (events.Subjects.PartitionMapping) sends
	// each action's triggers to the stream TriggerStream_P<k>; the
	// TriggerStream itself stays and takes what the mapping does not (a
	// malformed subject, or every trigger while the mapping is missing).
	// 0 or 1: one trigger stream, the contract's. Every replica consumes
	// every partition, and partition streams left from an earlier, larger
	// setting too, so changing it loses nothing.
	Partitions int
	// ExpectedRate (triggers/s this process should sustain) and
	// ExpectedLatency (the mean latency of the actions' APIs, their tail
	// included) size Workers, ActionConcurrency and MaxAckPending when
	// those are zero (see Size); both or neither.
	ExpectedRate    float64
	ExpectedLatency time.Duration
	// Workers bounds the triggers executed at once per process: 1024, or
	// Size(ExpectedRate, ExpectedLatency). Workers start as they are
	// needed: a process runs as many as it had triggers in flight at once.
	Workers int
	// ActionConcurrency bounds the triggers of one action executing at
	// once in a process (a bulkhead): a quarter of Workers (three quarters
	// with an expected rate: one action alone can carry it), at least 1.
	// More wait parked, holding no worker.
	ActionConcurrency int
	Prefetch          int // 64 triggers pulled ahead of the workers; NoPrefetch (-1) for none
	// MaxAckPending bounds the triggers handed out and not yet acked,
	// across all replicas (parked ones included): 4 x (Workers +
	// Prefetch), room for four processes of this size.
	MaxAckPending   int
	AckWait         time.Duration // 30 s; long calls are kept alive with InProgress
	MaxDeliver      int           // 5 deliveries before a trigger is dead-lettered
	DefaultTimeout  time.Duration // 10 s per attempt when the trigger sets none
	MaxTimeout      time.Duration // 60 s, the largest timeout_ms a trigger may ask for
	ResponseBodyCap int64         // 1 MiB of response body kept in a result
	// SlowCall is how long a live call may run before it counts against
	// its action's breaker as a failure, while still in flight: 5 s.
	SlowCall time.Duration
	// MaxRetryAfter caps the pause a Retry-After asks for: 1 min.
	MaxRetryAfter time.Duration
	// ResponseMemory bounds the bytes large responses (over 64 KiB) hold
	// at once across all workers: 64 MiB. Each takes 3 x ResponseBodyCap
	// plus its encoded result (at most the server's max payload) until its
	// result is stored; others wait for room before reading their body.
	ResponseMemory int64
	// ResultRetry is how long the publish of a made result is retried
	// (JetStream busy, a leader election) before the trigger is handed
	// back for redelivery, which calls the action again: 2 min.
	ResultRetry     time.Duration
	MaxTriggerBytes int           // 256 KiB
	MaxHeaders      int           // 64 request headers
	MaxHeaderBytes  int           // 16 KiB of request headers
	ShutdownTimeout time.Duration // 30 s to finish in-flight triggers on shutdown
	RetentionMaxAge time.Duration // 7 days of results and log events
	DuplicateWindow time.Duration // 2 min, deduplication of triggers and results (nats-server keeps every id of the window in memory)
}

// NoPrefetch as Config.Prefetch pulls only as many triggers as there are
// workers.
const NoPrefetch = -1

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Prefix, events.DefaultPrefix)
	n := namesFor(c.Prefix)
	def(&c.TriggerStream, n.TriggerStream)
	def(&c.ResultStream, n.ResultStream)
	def(&c.LogStream, n.LogStream)
	def(&c.DeadStream, n.DeadStream)
	def(&c.TokensBucket, n.TokensBucket)
	def(&c.FetchedBucket, n.FetchedBucket)
	def(&c.BreakerBucket, n.BreakerBucket)
	def(&c.Durable, n.Durable)
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt(&c.Replicas, 1)
	switch {
	case c.Prefetch == 0:
		c.Prefetch = 64
	case c.Prefetch < 0:
		c.Prefetch = 0
	}
	actionShare := quarter // of the workers one action may use
	if c.ExpectedRate > 0 && c.ExpectedLatency > 0 {
		defInt(&c.Workers, Size(c.ExpectedRate, c.ExpectedLatency, c.Prefetch).Workers)
		actionShare = threeQuarters
	}
	defInt(&c.Workers, DefaultWorkers)
	defInt(&c.ActionConcurrency, actionShare(c.Workers))
	defInt(&c.MaxAckPending, 4*(c.Workers+c.Prefetch))
	defInt(&c.MaxDeliver, 5)
	defInt(&c.MaxTriggerBytes, 256<<10)
	defInt(&c.MaxHeaders, 64)
	defInt(&c.MaxHeaderBytes, 16<<10)
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur(&c.AckWait, 30*time.Second)
	defDur(&c.DefaultTimeout, 10*time.Second)
	defDur(&c.MaxTimeout, 60*time.Second)
	defDur(&c.ShutdownTimeout, 30*time.Second)
	defDur(&c.RetentionMaxAge, 7*24*time.Hour)
	defDur(&c.DuplicateWindow, 2*time.Minute)
	if c.ResponseBodyCap <= 0 {
		c.ResponseBodyCap = 1 << 20
	}
	if c.ResponseMemory <= 0 {
		c.ResponseMemory = 64 << 20
	}
	defDur(&c.ResultRetry, 2*time.Minute)
	defDur(&c.SlowCall, 5*time.Second)
	defDur(&c.MaxRetryAfter, time.Minute)
	return c
}

// Validate reports a setting that cannot work. Call it on WithDefaults.
func (c Config) Validate() error {
	var errs []error
	if err := ValidatePrefix(c.Prefix); err != nil {
		errs = append(errs, err)
	}
	for _, n := range []struct{ what, name string }{
		{"trigger stream", c.TriggerStream}, {"result stream", c.ResultStream}, {"log stream", c.LogStream},
		{"dead-letter stream", c.DeadStream}, {"tokens bucket", c.TokensBucket}, {"fetched tokens bucket", c.FetchedBucket},
		{"breakers bucket", c.BreakerBucket}, {"durable consumer", c.Durable},
	} {
		if !events.ValidID(n.name) {
			errs = append(errs, fmt.Errorf("%s name %q: use 1 to 128 letters, digits, '-' and '_'", n.what, n.name))
		}
	}
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("replicas must be 1, 3 or 5, got %d", c.Replicas))
	}
	if c.Partitions < 0 || c.Partitions > events.MaxPartitions {
		errs = append(errs, fmt.Errorf("partitions must be 0 (one trigger stream) or 2 to %d, got %d", events.MaxPartitions, c.Partitions))
	}
	if c.DefaultTimeout > c.MaxTimeout {
		errs = append(errs, fmt.Errorf("default timeout %s is more than the maximum timeout %s", c.DefaultTimeout, c.MaxTimeout))
	}
	if c.AckWait < 3*time.Second {
		errs = append(errs, fmt.Errorf("ack wait %s is too short; use 3s or more", c.AckWait))
	}
	if c.DuplicateWindow < 2*time.Minute {
		errs = append(errs, fmt.Errorf("duplicate window %s is shorter than the contract's 2 minutes", c.DuplicateWindow))
	}
	if c.DuplicateWindow < 2*c.AckWait {
		errs = append(errs, fmt.Errorf("duplicate window %s must cover a redelivery: make it at least twice the ack wait %s", c.DuplicateWindow, c.AckWait))
	}
	if (c.ExpectedRate > 0) != (c.ExpectedLatency > 0) {
		errs = append(errs, fmt.Errorf("expected rate %g/s and expected latency %s: give both (the workers are sized from their product) or neither", c.ExpectedRate, c.ExpectedLatency))
	}
	if c.ExpectedRate < 0 || c.ExpectedLatency < 0 {
		errs = append(errs, fmt.Errorf("expected rate %g/s and expected latency %s must not be negative", c.ExpectedRate, c.ExpectedLatency))
	}
	if c.MaxAckPending < c.Workers {
		errs = append(errs, fmt.Errorf("max ack pending %d is less than the workers %d", c.MaxAckPending, c.Workers))
	}
	if c.MaxDeliver < 2 {
		errs = append(errs, fmt.Errorf("max deliver must be at least 2, got %d", c.MaxDeliver))
	}
	return errors.Join(errs...)
}

// names are the stream, durable and bucket names of one prefix (see Config).
type names struct {
	TriggerStream, ResultStream, LogStream, DeadStream string
	TokensBucket, FetchedBucket, BreakerBucket         string
	Durable                                            string
}

func namesFor(prefix string) names {
	if prefix == events.DefaultPrefix {
		return names{
			TriggerStream: events.DefaultTriggerStream, ResultStream: events.DefaultResultStream,
			LogStream: events.DefaultLogStream, DeadStream: "ACTIONS_DEAD",
			TokensBucket: events.DefaultTokensBucket, FetchedBucket: events.DefaultFetchedBucket,
			BreakerBucket: events.DefaultBreakerBucket, Durable: events.DefaultDurable,
		}
	}
	up := strings.ToUpper(prefix)
	return names{
		TriggerStream: up + "_TRIGGERS", ResultStream: up + "_RESULTS", LogStream: up + "_LOGS", DeadStream: up + "_DEAD",
		TokensBucket: prefix + "_" + events.DefaultTokensBucket, FetchedBucket: prefix + "_" + events.DefaultFetchedBucket,
		BreakerBucket: prefix + "_" + events.DefaultBreakerBucket, Durable: prefix + "-consumer",
	}
}

// ValidatePrefix reports why prefix cannot be the subject prefix: it must be
// one subject token of letters, digits, '-' and '_' (no dots, wildcards or
// spaces), at most 64 characters, since the stream and bucket names are
// made from it.
func ValidatePrefix(prefix string) error {
	if len(prefix) > 64 || !events.ValidID(prefix) {
		return fmt.Errorf("prefix %q: use 1 to 64 letters, digits, '-' and '_' (one subject token: no dots, wildcards or spaces)", prefix)
	}
	return nil
}

func (c Config) limits() events.Limits {
	return events.Limits{MaxTriggerBytes: c.MaxTriggerBytes, MaxHeaders: c.MaxHeaders,
		MaxHeaderBytes: c.MaxHeaderBytes, MaxTimeout: c.MaxTimeout}
}
