package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/events"
)

// Headers of a dead-lettered trigger.
const (
	HeaderDeadReason  = "Actions-Dead-Reason"
	HeaderDeadSubject = "Actions-Original-Subject"
	HeaderDeadSeq     = "Actions-Original-Seq"
)

// Deadlines of the steps of deadLetter. Each step has its own, started
// when the step starts: the context the trigger was finished with may have
// run out already (a result publish that timed out is what brings most
// triggers here), and one step running out must not take the next ones
// with it.
const (
	deadPublishTimeout = 10 * time.Second // the dead-letter publish, retries included
	deadTryTimeout     = 3 * time.Second  // one try of it
	deadLogTimeout     = 5 * time.Second  // the trigger_dead_lettered log event
	deadTermTimeout    = 5 * time.Second  // the confirmed term
)

// deadLetter moves a trigger that exhausted its deliveries to the
// dead-letter stream, with the reason and its original subject, so ops can
// replay it by publishing its data to that subject again; it then logs
// trigger_dead_lettered and terminates the trigger. ctx is used for its
// values only: every step has its own deadline (deadPublishTimeout ...).
//
// If the dead-letter publish fails even after its retries, the trigger is
// not terminated: it stays in the triggers stream (the server delivers it
// no more, MaxDeliver is reached) and the process log names its stream
// sequence, so it is not lost.
func (s *Service) deadLetter(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, r *run) {
	base := context.WithoutCancel(ctx)
	seq := strconv.FormatUint(meta.Sequence.Stream, 10)
	dead := &nats.Msg{Subject: s.cfg.Prefix + ".dead." + deadSubjectToken(r.res.ActionID), Data: msg.Data(), Header: nats.Header{}}
	dead.Header.Set(HeaderDeadReason, r.infra.Error())
	// The contract's subject, also for a trigger of a partition: a replay
	// goes through the mapping again, whatever the partitions are then.
	dead.Header.Set(HeaderDeadSubject, s.subjects.Unpartition(msg.Subject()))
	dead.Header.Set(HeaderDeadSeq, seq)
	dead.Header.Set(jetstream.MsgIDHeader, "dead-"+seq)
	attrs := []any{"trigger_id", r.res.TriggerID, "action_id", r.res.ActionID, "stream_seq", meta.Sequence.Stream, "err", r.infra}
	if err := s.publishDead(base, dead); err != nil {
		s.log.Error("dead-letter trigger failed; it stays in the triggers stream at stream_seq, delivered no more (MaxDeliver reached)",
			append(attrs, "dead_err", err)...)
		return
	}
	s.log.Error("trigger dead-lettered after its last delivery", attrs...)
	s.metrics.dead()
	ev := &events.LogEvent{Time: events.FormatTime(s.now()), Level: events.LevelError, Event: events.EventDeadLettered,
		ActionID: r.res.ActionID, TriggerID: r.res.TriggerID, TokenID: r.res.TokenID, Context: r.res.Context,
		Message: "trigger could not be finished after " + strconv.FormatUint(meta.NumDelivered, 10) + " deliveries; moved to the dead-letter stream",
		Details: map[string]any{"reason": r.infra.Error(), "stream_seq": meta.Sequence.Stream}}
	lctx, cancel := context.WithTimeout(base, deadLogTimeout)
	err := s.pub.Log(ev, "").Wait(lctx)
	cancel()
	if err != nil {
		s.log.Warn("publish trigger_dead_lettered log event", append(attrs, "log_err", err)...)
	}
	tctx, cancel := context.WithTimeout(base, deadTermTimeout)
	err = s.term(tctx, msg, "dead-lettered")
	cancel()
	if err != nil {
		s.log.Warn("terminate dead-lettered trigger; it may stay in the triggers stream too", append(attrs, "term_err", err)...)
	}
}

// publishDead stores dead in the dead-letter stream, retrying for up to
// deadPublishTimeout; its Nats-Msg-Id makes a retry of a publish that was
// stored but not acknowledged store nothing more.
func (s *Service) publishDead(ctx context.Context, dead *nats.Msg) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.MaxElapsedTime = deadPublishTimeout
	ctx, cancel := context.WithTimeout(ctx, deadPublishTimeout)
	defer cancel()
	return backoff.Retry(func() error {
		tctx, cancel := context.WithTimeout(ctx, deadTryTimeout)
		defer cancel()
		_, err := s.js.PublishMsg(tctx, dead)
		return err
	}, backoff.WithContext(b, ctx))
}

// term terminates msg and waits for the server to confirm it (the server
// answers an acknowledgement sent with a reply subject, as for DoubleAck),
// so a lost term is reported instead of passing unnoticed.
func (s *Service) term(ctx context.Context, msg jetstream.Msg, reason string) error {
	if msg.Reply() == "" {
		return msg.TermWithReason(reason)
	}
	_, err := s.js.Conn().RequestWithContext(ctx, msg.Reply(), []byte("+TERM "+reason))
	return err
}

// deadSubjectToken is actionID when it is a valid id, else
// events.InvalidActionID, so the dead-letter subject is well-formed.
func deadSubjectToken(actionID string) string {
	if events.ValidID(actionID) {
		return actionID
	}
	return events.InvalidActionID
}

// DeadLetter is a trigger in the dead-letter stream.
type DeadLetter struct {
	Seq             uint64    `json:"seq"`
	Subject         string    `json:"original_subject"`
	Reason          string    `json:"reason"`
	OriginalSeq     string    `json:"original_seq"`
	Time            time.Time `json:"time"`
	Data            []byte    `json:"-"`
	TriggerID       string    `json:"trigger_id,omitempty"`
	DeadLetterTopic string    `json:"dead_letter_subject"`
}

// ListDeadLetters returns the triggers in the dead-letter stream.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, cfg Config) ([]DeadLetter, error) {
	cfg = cfg.WithDefaults()
	s, err := js.Stream(ctx, cfg.DeadStream)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", cfg.DeadStream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, deadLetterOf(m))
	}
	return out, nil
}

func deadLetterOf(m *jetstream.RawStreamMsg) DeadLetter {
	d := DeadLetter{Seq: m.Sequence, Subject: m.Header.Get(HeaderDeadSubject), Reason: m.Header.Get(HeaderDeadReason),
		OriginalSeq: m.Header.Get(HeaderDeadSeq), Time: m.Time, Data: m.Data, DeadLetterTopic: m.Subject}
	var t struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(m.Data, &t) == nil {
		d.TriggerID = t.ID
	}
	return d
}

// ReplayDeadLetter publishes the trigger at seq of the dead-letter stream
// to its original subject again and removes it from the dead-letter stream.
// The replay gets a new Nats-Msg-Id, so the triggers stream's duplicate
// window does not drop it.
func ReplayDeadLetter(ctx context.Context, js jetstream.JetStream, cfg Config, seq uint64) (DeadLetter, error) {
	cfg = cfg.WithDefaults()
	s, err := js.Stream(ctx, cfg.DeadStream)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead-letter stream %s: %w", cfg.DeadStream, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	d := deadLetterOf(m)
	if d.Subject == "" {
		return d, fmt.Errorf("dead letter %d has no %s header", seq, HeaderDeadSubject)
	}
	msg := &nats.Msg{Subject: d.Subject, Data: d.Data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s-replay-%d", d.TriggerID, seq))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return d, fmt.Errorf("replay dead letter %d: %w", seq, err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		return d, fmt.Errorf("replayed dead letter %d but could not remove it: %w", seq, err)
	}
	return d, nil
}
