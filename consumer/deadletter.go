package consumer

import (
	"context"
	"strconv"

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
	ev := &events.LogEvent{Time: events.FormatTime(s.now()), Level: events.LevelError, Event: events.EventDeadLettered,
		ActionID: r.res.ActionID, TriggerID: r.res.TriggerID, TokenID: r.res.TokenID, Context: r.res.Context,
		Message: "trigger could not be finished after " + strconv.FormatUint(meta.NumDelivered, 10) + " deliveries; moved to the dead-letter stream",
		Details: map[string]any{"reason": r.infra.Error(), "stream_seq": meta.Sequence.Stream}}
	_ = s.pub.Log(ev, "").Wait(ctx)
	_ = msg.TermWithReason("dead-lettered")
}
