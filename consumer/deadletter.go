package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

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

// deadLetter moves a trigger that exhausted its deliveries to the
// dead-letter stream, with the reason and its original subject, so ops can
// replay it by publishing its data to that subject again. The trigger is
// then terminated. If even that fails, the trigger is left to the server's
// MaxDeliver, and the process log says so.
func (s *Service) deadLetter(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, r *run) {
	dead := &nats.Msg{Subject: s.cfg.Prefix + ".dead." + r.res.ActionID, Data: msg.Data(), Header: nats.Header{}}
	dead.Header.Set(HeaderDeadReason, r.infra.Error())
	dead.Header.Set(HeaderDeadSubject, msg.Subject())
	dead.Header.Set(HeaderDeadSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
	dead.Header.Set(jetstream.MsgIDHeader, "dead-"+strconv.FormatUint(meta.Sequence.Stream, 10))
	attrs := []any{"trigger_id", r.res.TriggerID, "action_id", r.res.ActionID, "stream_seq", meta.Sequence.Stream, "err", r.infra}
	if _, err := s.js.PublishMsg(ctx, dead); err != nil {
		s.log.Error("dead-letter trigger failed; it stays in the stream until MaxDeliver", append(attrs, "dead_err", err)...)
		_ = msg.NakWithDelay(s.cfg.AckWait)
		return
	}
	s.log.Error("trigger dead-lettered after its last delivery", attrs...)
	s.metrics.dead()
	ev := &events.LogEvent{Time: events.FormatTime(s.now()), Level: events.LevelError, Event: events.EventDeadLettered,
		ActionID: r.res.ActionID, TriggerID: r.res.TriggerID, TokenID: r.res.TokenID, Context: r.res.Context,
		Message: "trigger could not be finished after " + strconv.FormatUint(meta.NumDelivered, 10) + " deliveries; moved to the dead-letter stream",
		Details: map[string]any{"reason": r.infra.Error(), "stream_seq": meta.Sequence.Stream}}
	_ = s.pub.Log(ev, "").Wait(ctx)
	_ = msg.TermWithReason("dead-lettered")
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
