package admin

// Re-running a logged trigger as a test run (triggers.rerun): its copy is
// read from the stream of recent triggers, which the consumer keeps when
// ACTIONS_KEEP_TRIGGERS is set.

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/events"
)

// WithRecentTriggers serves triggers.rerun from stream (the installation's
// ACTIONS_RECENT); without it triggers.rerun answers that copies are not
// kept.
func WithRecentTriggers(js jetstream.JetStream, stream string) Option {
	return func(a *Service) { a.recentJS, a.recentStream = js, stream }
}

// RerunTrigger publishes the kept copy of the trigger triggerID of
// actionID as a test run (source test, a new id): the same request, signed
// with the same token, run now.
func (a *Service) RerunTrigger(ctx context.Context, actionID, triggerID string) (Rerun, error) {
	switch {
	case !events.ValidID(actionID):
		return Rerun{}, errorf(CodeBadRequest, "action_id %q must match ^[A-Za-z0-9_-]{1,128}$", actionID)
	case !events.ValidTriggerID(triggerID):
		return Rerun{}, errorf(CodeBadRequest, "trigger_id must be 1 to 128 bytes of UTF-8 without control characters")
	case a.recentJS == nil:
		return Rerun{}, errorf(CodeBadRequest, "copies of triggers are not kept: set ACTIONS_KEEP_TRIGGERS (for example 256MiB) to re-run logged triggers")
	}
	s, err := a.recentJS.Stream(ctx, a.recentStream)
	if err != nil {
		return Rerun{}, errorf(CodeInternal, "recent triggers: %v", err)
	}
	subjects := events.NewSubjects(a.prefix)
	m, err := s.GetLastMsgForSubject(ctx, subjects.Recent(actionID, triggerID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Rerun{}, errorf(CodeNotFound, "trigger %q of action %s is not among the recent triggers kept (older ones are dropped first; invalid triggers are not kept)", triggerID, actionID)
	}
	if err != nil {
		return Rerun{}, errorf(CodeInternal, "read trigger %q: %v", triggerID, err)
	}
	r, err := rerunAsTest(ctx, a.recentJS, subjects, m.Data, fmt.Sprintf("trigger %q", triggerID))
	r.Of = triggerID
	return r, err
}
