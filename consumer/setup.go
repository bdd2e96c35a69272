package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// Resources are the JetStream objects the service works with.
type Resources struct {
	Triggers jetstream.Consumer
	Tokens   jetstream.KeyValue
	Fetched  jetstream.KeyValue
	Breakers jetstream.KeyValue
}

// Setup creates or updates the streams, the shared durable pull consumer and
// the KV buckets of cfg (WithDefaults applied). It works against streams
// that exist already with compatible settings, and says what is
// incompatible otherwise.
func Setup(ctx context.Context, js jetstream.JetStream, cfg Config) (*Resources, error) {
	p := cfg.Prefix
	streams := []jetstream.StreamConfig{
		{Name: cfg.TriggerStream, Subjects: []string{p + ".trigger.>"}, Retention: jetstream.WorkQueuePolicy,
			Storage: jetstream.FileStorage, Replicas: cfg.Replicas, Duplicates: cfg.DuplicateWindow,
			Description: "Custom Actions triggers (work queue)"},
		{Name: cfg.ResultStream, Subjects: []string{p + ".result.>"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: cfg.Replicas, MaxAge: cfg.RetentionMaxAge, Duplicates: cfg.DuplicateWindow,
			Description: "Custom Actions results, one per trigger"},
		{Name: cfg.LogStream, Subjects: []string{p + ".log.>"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: cfg.Replicas, MaxAge: cfg.RetentionMaxAge, Duplicates: cfg.DuplicateWindow,
			Description: "Custom Actions log events"},
		{Name: cfg.DeadStream, Subjects: []string{p + ".dead.>"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: cfg.Replicas, MaxAge: cfg.RetentionMaxAge,
			Description: "Custom Actions triggers that could not be finished"},
	}
	for _, sc := range streams {
		if err := ensureStream(ctx, js, sc); err != nil {
			return nil, err
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.TriggerStream, jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		Description:   "Custom Actions executors, shared by every replica",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: cfg.MaxAckPending,
		Replicas:      0, // the stream's
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", cfg.Durable, cfg.TriggerStream, err)
	}
	r := &Resources{Triggers: cons}
	buckets := []struct {
		dst     *jetstream.KeyValue
		name    string
		history uint8
		desc    string
	}{
		{&r.Tokens, cfg.TokensBucket, 5, "Custom Actions token configurations"},
		{&r.Fetched, cfg.FetchedBucket, 1, "Custom Actions fetched tokens, refresh leases"},
		{&r.Breakers, cfg.BreakerBucket, 1, "Custom Actions circuit breakers"},
	}
	for _, b := range buckets {
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: b.name, History: b.history, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, Description: b.desc,
		})
		if err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", b.name, err)
		}
		*b.dst = kv
	}
	return r, nil
}

// ensureStream creates or updates sc; a stream that exists and cannot be
// updated is used if its retention and subjects fit.
func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	_, err := js.CreateOrUpdateStream(ctx, sc)
	if err == nil {
		return nil
	}
	s, gerr := js.Stream(ctx, sc.Name)
	if gerr != nil {
		return fmt.Errorf("create stream %s: %w", sc.Name, err)
	}
	have := s.CachedInfo().Config
	var problems []error
	if have.Retention != sc.Retention {
		problems = append(problems, fmt.Errorf("retention is %s, want %s", have.Retention, sc.Retention))
	}
	for _, subj := range sc.Subjects {
		if !slices.Contains(have.Subjects, subj) {
			problems = append(problems, fmt.Errorf("subjects %v lack %s", have.Subjects, subj))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("stream %s exists with incompatible settings (%w); update failed: %v", sc.Name, errors.Join(problems...), err)
	}
	return nil
}
