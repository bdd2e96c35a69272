package consumer

// Recent triggers: with ACTIONS_KEEP_TRIGGERS, the consumer keeps a copy
// of every valid trigger it executes in a stream bounded by size, so that
// an admin can re-run a logged trigger as a test run (admin
// triggers.rerun). The triggers stream is a work queue: an executed
// trigger is gone from it.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/events"
)

// RecentStream is the name of the stream of recent triggers of prefix:
// ACTIONS_RECENT, or UPPER(prefix)_RECENT.
func RecentStream(prefix string) string { return strings.ToUpper(prefix) + "_RECENT" }

// SetupRecent creates or updates the stream of recent triggers: at most
// maxBytes, the oldest dropped first, one message per trigger, for at most
// the retention of results. maxBytes 0 leaves it alone (the feature is off).
func SetupRecent(ctx context.Context, js jetstream.JetStream, cfg Config, maxBytes int64) error {
	if maxBytes <= 0 {
		return nil
	}
	cfg = cfg.WithDefaults()
	sc := jetstream.StreamConfig{Name: RecentStream(cfg.Prefix), Subjects: []string{events.NewSubjects(cfg.Prefix).RecentWildcard()},
		Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, MaxAge: cfg.RetentionMaxAge,
		MaxBytes: maxBytes, MaxMsgsPerSubject: 1, Discard: jetstream.DiscardOld,
		Description: "Custom Actions recent triggers (copies, for re-running one as a test)"}
	err := ensureStream(ctx, js, sc)
	if errors.Is(err, ErrStreamConflict) {
		return err
	}
	if err != nil {
		return fmt.Errorf("recent triggers stream: %w", err)
	}
	return nil
}

// WithRecentTriggers keeps a copy of every valid trigger in the stream made
// by SetupRecent.
func WithRecentTriggers() Option { return func(s *Service) { s.recent = true } }

// keepRecent publishes a copy of the valid trigger t (data as received),
// without waiting: a copy that is lost only means it cannot be re-run.
func (s *Service) keepRecent(t *events.Trigger, data []byte) {
	if _, err := s.js.PublishMsgAsync(&nats.Msg{Subject: s.subjects.Recent(t.ActionID, t.ID), Data: data}); err != nil {
		s.log.Debug("keep a copy of the trigger", "trigger_id", t.ID, "err", err)
	}
}
