package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

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
	var cons jetstream.Consumer
	err := shortTries(ctx, func(ctx context.Context) (err error) {
		cons, err = js.CreateOrUpdateConsumer(ctx, cfg.TriggerStream, consumerConfig(cfg))
		return err
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
		err := shortTries(ctx, func(ctx context.Context) (err error) {
			*b.dst, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket: b.name, History: b.history, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, Description: b.desc,
			})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", b.name, err)
		}
	}
	return r, nil
}

// shortTries runs op up to three times, each with a 5 s deadline: replicas
// that start together race to create the same objects, and a request that
// lost such a race in a cluster may get no answer at all; looking again
// settles it.
func shortTries(ctx context.Context, op func(context.Context) error) error {
	var err error
	for range 3 {
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = op(octx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

func consumerConfig(cfg Config) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		Description:   "Custom Actions executors, shared by every replica",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: cfg.MaxAckPending,
		Replicas:      0, // the stream's
	}
}

// ensureStream creates sc, or updates the stream that exists when its
// settings differ; a stream that cannot be updated is used if its retention
// and subjects fit.
func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	return shortTries(ctx, func(ctx context.Context) error { return ensureStreamOnce(ctx, js, sc) })
}

func ensureStreamOnce(octx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	s, err := js.Stream(octx, sc.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(octx, sc)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil // another replica created it just now
		}
		if err != nil {
			return fmt.Errorf("create stream %s: %w", sc.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", sc.Name, err)
	}
	have := s.CachedInfo().Config
	if streamUpToDate(have, sc) {
		return nil
	}
	_, uerr := js.UpdateStream(octx, sc)
	if uerr == nil {
		return nil
	}
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
		return fmt.Errorf("stream %s exists with incompatible settings (%w); update failed: %v", sc.Name, errors.Join(problems...), uerr)
	}
	return nil // compatible; the settings that differ stay as the operator set them
}

// streamUpToDate reports whether the settings this service manages are
// already as wanted, so a restart makes no update request.
func streamUpToDate(have, want jetstream.StreamConfig) bool {
	return have.Retention == want.Retention && slices.Equal(have.Subjects, want.Subjects) && have.Storage == want.Storage &&
		have.Replicas == want.Replicas && have.MaxAge == want.MaxAge && have.Duplicates == want.Duplicates &&
		have.Description == want.Description
}
