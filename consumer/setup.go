package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"
)

// Resources are the JetStream objects the service works with.
type Resources struct {
	Triggers jetstream.Consumer
	// Partitions are the shared durable consumers of the trigger
	// partitions (Config.Partitions), empty without partitions.
	Partitions []jetstream.Consumer
	Tokens     jetstream.KeyValue
	Fetched    jetstream.KeyValue
	Breakers   jetstream.KeyValue
	// Connections holds end users' connections, ConnectStates the pending
	// connect links (contract §11).
	Connections   jetstream.KeyValue
	ConnectStates jetstream.KeyValue
}

// triggerConsumers are the durable consumers triggers are pulled from:
// the trigger stream's, then its partitions'.
func (r *Resources) triggerConsumers() []jetstream.Consumer {
	return append([]jetstream.Consumer{r.Triggers}, r.Partitions...)
}

// triggerStreamConfig is a work-queue stream of triggers on subject: the
// trigger stream, or one of its partitions.
func triggerStreamConfig(cfg Config, name, subject, description string) jetstream.StreamConfig {
	return jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas, Duplicates: cfg.DuplicateWindow, Description: description}
}

// ErrStreamConflict is returned by Setup when a stream of one of its names
// exists with subjects other than the ones it would give it, or when
// another stream already holds its subjects. Setup never changes the
// subjects of a stream it did not create: that would take the subjects away
// from another installation and lose its producers' messages.
var ErrStreamConflict = errors.New("stream conflict")

// Setup creates or updates the streams, the shared durable pull consumer and
// the KV buckets of cfg (WithDefaults applied). It works against streams
// that exist already with its subjects and compatible settings, and says
// what is incompatible otherwise.
//
// A stream of one of its names with other subjects is refused with an
// error matching ErrStreamConflict; that error is also a
// *backoff.PermanentError, so a start-up retry loop built on backoff stops
// at once instead of retrying what only an operator can fix.
func Setup(ctx context.Context, js jetstream.JetStream, cfg Config) (*Resources, error) {
	res, err := setup(ctx, js, cfg)
	if errors.Is(err, ErrStreamConflict) {
		return nil, backoff.Permanent(err)
	}
	return res, err
}

func setup(ctx context.Context, js jetstream.JetStream, cfg Config) (*Resources, error) {
	p := cfg.Prefix
	streams := []jetstream.StreamConfig{
		triggerStreamConfig(cfg, cfg.TriggerStream, p+".trigger.>", "Custom Actions triggers (work queue)"),
		{Name: cfg.ResultStream, Subjects: []string{p + ".result.>"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: cfg.Replicas, MaxAge: cfg.RetentionMaxAge, Duplicates: cfg.DuplicateWindow,
			Description: "Custom Actions results, one per trigger"},
		{Name: cfg.LogStream, Subjects: []string{p + ".log.>"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: cfg.Replicas, MaxAge: cfg.RetentionMaxAge, Duplicates: cfg.DuplicateWindow,
			Description: "Custom Actions log events"},
		{Name: cfg.DeadStream, Subjects: []string{p + ".dead.>"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: cfg.Replicas, MaxAge: cfg.RetentionMaxAge,
			Description: "Custom Actions triggers that could not be finished"},
		{Name: ConnectionNames(p).Stream, Subjects: []string{p + ".connection.>"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: cfg.Replicas, MaxAge: cfg.RetentionMaxAge,
			Description: "Custom Actions connections made by end users (the producer sends the trigger that asked again)"},
	}
	for _, sc := range streams {
		if err := ensureStream(ctx, js, sc); err != nil {
			return nil, err
		}
	}
	cons, err := ensureConsumer(ctx, js, cfg.TriggerStream, consumerConfig(cfg))
	if err != nil {
		return nil, err
	}
	parts, err := setupPartitions(ctx, js, cfg)
	if err != nil {
		return nil, err
	}
	r := &Resources{Triggers: cons, Partitions: parts}
	cn := ConnectionNames(p)
	buckets := []struct {
		dst     *jetstream.KeyValue
		name    string
		history uint8
		ttl     time.Duration
		desc    string
	}{
		{&r.Tokens, cfg.TokensBucket, 5, 0, "Custom Actions token configurations"},
		{&r.Fetched, cfg.FetchedBucket, 1, 0, "Custom Actions fetched tokens, refresh leases"},
		{&r.Breakers, cfg.BreakerBucket, 1, 0, "Custom Actions circuit breakers"},
		{&r.Connections, cn.Bucket, 1, 0, "Custom Actions end users' connections"},
		{&r.ConnectStates, cn.StatesBucket, 1, MaxConnectTTL, "Custom Actions pending connect links"},
	}
	for _, b := range buckets {
		err := shortTries(ctx, func(ctx context.Context) (err error) {
			want := jetstream.KeyValueConfig{Bucket: b.name, History: b.history, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
				Description: b.desc, TTL: b.ttl}
			// Look first: a bucket that exists as wanted needs no request
			// that could race another replica's.
			if kv, err := js.KeyValue(ctx, b.name); err == nil {
				if st, err := kv.Status(ctx); err == nil && bucketUpToDate(st, want) {
					*b.dst = kv
					return nil
				}
			} else if errors.Is(err, jetstream.ErrBucketNotFound) {
				jitter(ctx)
			}
			*b.dst, err = js.CreateOrUpdateKeyValue(ctx, want)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", b.name, err)
		}
	}
	return r, nil
}

// jitter waits up to 200 ms. Replicas that start together create the same
// missing objects at the same moment; in a cluster two identical creation
// requests at once may both go unanswered (each then waits for its
// timeout, and they stay in step for every following object: 5 s each).
// A random pause before creating takes them out of step.
func jitter(ctx context.Context) {
	t := time.NewTimer(time.Duration(rand.Int64N(int64(200 * time.Millisecond))))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// bucketUpToDate reports whether a bucket's status has the settings want
// gives it.
func bucketUpToDate(st jetstream.KeyValueStatus, want jetstream.KeyValueConfig) bool {
	info := st.(*jetstream.KeyValueBucketStatus).StreamInfo()
	return st.History() == int64(want.History) && st.TTL() == want.TTL && info.Config.Replicas == max(want.Replicas, 1) &&
		info.Config.Description == want.Description
}

// consumerUpToDate reports whether the durable consumer has the settings
// want gives it.
func consumerUpToDate(have, want jetstream.ConsumerConfig) bool {
	return have.AckPolicy == want.AckPolicy && have.AckWait == want.AckWait && have.MaxDeliver == want.MaxDeliver &&
		have.MaxAckPending == want.MaxAckPending && have.Description == want.Description
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
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrStreamConflict) {
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

// ensureStream creates sc, or updates the stream of that name when it is
// ours (its subjects are the ones sc gives it) and other settings differ; a
// stream of ours that cannot be updated is used if its retention fits. A
// stream of that name with other subjects, or another stream that holds
// sc's subjects, is never changed: the error matches ErrStreamConflict.
func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	return shortTries(ctx, func(ctx context.Context) error { return ensureStreamOnce(ctx, js, sc) })
}

func ensureStreamOnce(octx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	s, err := js.Stream(octx, sc.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		jitter(octx)
		s, err = js.Stream(octx, sc.Name)
	}
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(octx, sc)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another replica created it just now, or someone else did:
			// look at it as at any stream that exists.
			s, err = js.Stream(octx, sc.Name)
		} else if err != nil {
			if cerr := subjectsTaken(octx, js, sc); cerr != nil {
				return cerr
			}
			return fmt.Errorf("create stream %s: %w", sc.Name, err)
		} else {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", sc.Name, err)
	}
	have := s.CachedInfo().Config
	if !sameSubjects(have.Subjects, sc.Subjects) {
		return fmt.Errorf("%w: stream %s exists with subjects %v, but this installation expects %v; it belongs to another installation "+
			"(a different ACTIONS_PREFIX) or was made by hand, and its subjects are not changed: use another prefix, or fix or delete the stream",
			ErrStreamConflict, sc.Name, have.Subjects, sc.Subjects)
	}
	if streamUpToDate(have, sc) {
		return nil
	}
	_, uerr := js.UpdateStream(octx, sc)
	if uerr == nil {
		return nil
	}
	if have.Retention != sc.Retention {
		return fmt.Errorf("stream %s exists with incompatible settings (retention is %s, want %s); update failed: %w",
			sc.Name, have.Retention, sc.Retention, uerr)
	}
	return nil // compatible; the settings that differ stay as the operator set them
}

// subjectsTaken returns an ErrStreamConflict error when another stream
// already holds one of sc's subjects (the reason a create fails with
// overlapping subjects), and nil otherwise.
func subjectsTaken(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	for _, subj := range sc.Subjects {
		owner, err := js.StreamNameBySubject(ctx, subj)
		if err != nil || owner == "" || owner == sc.Name {
			continue
		}
		ownerSubjects := "?"
		if st, err := js.Stream(ctx, owner); err == nil {
			ownerSubjects = fmt.Sprint(st.CachedInfo().Config.Subjects)
		}
		return fmt.Errorf("%w: cannot create stream %s with subjects %v: stream %s (subjects %s) already holds %s; "+
			"it belongs to another installation or was made by hand, and is not changed",
			ErrStreamConflict, sc.Name, sc.Subjects, owner, ownerSubjects, subj)
	}
	return nil
}

// sameSubjects reports whether a and b hold the same subjects, in any
// order.
func sameSubjects(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range b {
		if !slices.Contains(a, s) {
			return false
		}
	}
	return true
}

// streamUpToDate reports whether the settings this service manages are
// already as wanted, so a restart makes no update request.
func streamUpToDate(have, want jetstream.StreamConfig) bool {
	return have.Retention == want.Retention && sameSubjects(have.Subjects, want.Subjects) && have.Storage == want.Storage &&
		have.Replicas == want.Replicas && have.MaxAge == want.MaxAge && have.Duplicates == want.Duplicates &&
		have.Description == want.Description
}
