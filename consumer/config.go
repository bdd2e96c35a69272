package consumer

import (
	"errors"
	"fmt"
	"time"

	"customactions/events"
)

// Config is what a Service needs to know. A zero field takes the default
// written beside it; Validate reports what cannot be used.
type Config struct {
	Prefix        string // "actions"
	TriggerStream string // "ACTIONS_TRIGGERS"
	ResultStream  string // "ACTIONS_RESULTS"
	LogStream     string // "ACTIONS_LOGS"
	DeadStream    string // "ACTIONS_DEAD"
	TokensBucket  string // "action_tokens"
	FetchedBucket string // "action_fetched_tokens"
	BreakerBucket string // "action_breakers"
	Durable       string // "actions-consumer"

	Replicas        int           // 1 (3 on a cluster)
	Workers         int           // 64 triggers at once per process
	Prefetch        int           // 0: triggers buffered beyond Workers (see WithDefaults)
	MaxAckPending   int           // 1024, across all replicas
	AckWait         time.Duration // 30 s; long calls are kept alive with InProgress
	MaxDeliver      int           // 5 deliveries before a trigger is dead-lettered
	DefaultTimeout  time.Duration // 10 s per attempt when the trigger sets none
	MaxTimeout      time.Duration // 60 s, the largest timeout_ms a trigger may ask for
	ResponseBodyCap int64         // 1 MiB of response body kept in a result
	MaxTriggerBytes int           // 256 KiB
	MaxHeaders      int           // 64 request headers
	MaxHeaderBytes  int           // 16 KiB of request headers
	ShutdownTimeout time.Duration // 30 s to finish in-flight triggers on shutdown
	RetentionMaxAge time.Duration // 7 days of results and log events
	DuplicateWindow time.Duration // 2 min, deduplication of triggers and results (nats-server keeps every id of the window in memory)
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Prefix, events.DefaultPrefix)
	def(&c.TriggerStream, events.DefaultTriggerStream)
	def(&c.ResultStream, events.DefaultResultStream)
	def(&c.LogStream, events.DefaultLogStream)
	def(&c.DeadStream, "ACTIONS_DEAD")
	def(&c.TokensBucket, events.DefaultTokensBucket)
	def(&c.FetchedBucket, events.DefaultFetchedBucket)
	def(&c.BreakerBucket, events.DefaultBreakerBucket)
	def(&c.Durable, events.DefaultDurable)
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt(&c.Replicas, 1)
	defInt(&c.Workers, 64)
	if c.Prefetch < 0 {
		c.Prefetch = 0
	}
	defInt(&c.MaxAckPending, 1024)
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
	return c
}

// Validate reports a setting that cannot work. Call it on WithDefaults.
func (c Config) Validate() error {
	var errs []error
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("replicas must be 1, 3 or 5, got %d", c.Replicas))
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
	if c.MaxAckPending < c.Workers {
		errs = append(errs, fmt.Errorf("max ack pending %d is less than the workers %d", c.MaxAckPending, c.Workers))
	}
	if c.MaxDeliver < 2 {
		errs = append(errs, fmt.Errorf("max deliver must be at least 2, got %d", c.MaxDeliver))
	}
	return errors.Join(errs...)
}

func (c Config) limits() events.Limits {
	return events.Limits{MaxTriggerBytes: c.MaxTriggerBytes, MaxHeaders: c.MaxHeaders,
		MaxHeaderBytes: c.MaxHeaderBytes, MaxTimeout: c.MaxTimeout}
}
