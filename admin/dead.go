package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"customactions/events"
)

// DeadLetter is a trigger in the dead-letter stream (PROTOCOL.md §8) as
// admins see it: where and why, not its data (a trigger's headers may
// hold secrets).
type DeadLetter struct {
	Seq         uint64 `json:"seq"`
	TriggerID   string `json:"trigger_id,omitempty"`
	ActionID    string `json:"action_id,omitempty"`
	Subject     string `json:"original_subject"`
	OriginalSeq string `json:"original_seq"`
	Reason      string `json:"reason"`
	Time        string `json:"time"`
	// Data is the trigger as it was published.
	Data []byte `json:"-"`
}

// DeadStore reads and replays the dead-letter stream. cmd/consumer adapts
// consumer.ListDeadLetters and consumer.ReplayDeadLetter, which own the
// stream's format; errors wrap jetstream.ErrStreamNotFound and
// jetstream.ErrMsgNotFound.
type DeadStore interface {
	List(ctx context.Context) ([]DeadLetter, error)
	Replay(ctx context.Context, seq uint64) (DeadLetter, error)
}

// Publisher publishes a trigger; jetstream.JetStream satisfies it.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// DeadLetters lists, replays and re-runs dead-lettered triggers: the one
// implementation behind the dead.* admin requests (web UI) and
// `consumer dead`.
type DeadLetters struct {
	store    DeadStore
	pub      Publisher
	subjects events.Subjects
}

// NewDeadLetters returns the dead letters of the installation of prefix.
func NewDeadLetters(prefix string, store DeadStore, pub Publisher) *DeadLetters {
	return &DeadLetters{store: store, pub: pub, subjects: events.NewSubjects(prefix)}
}

// List returns the dead letters, oldest first.
//
// Errors: *Error with CodeNotFound, wrapping jetstream.ErrStreamNotFound,
// when there is no dead-letter stream.
func (d *DeadLetters) List(ctx context.Context) ([]DeadLetter, error) {
	list, err := d.store.List(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, &Error{Code: CodeNotFound, Message: "there is no dead-letter stream: has the service run on this NATS?", err: err}
	}
	if list == nil {
		list = []DeadLetter{}
	}
	return list, err
}

// Replay publishes the dead letter seq to its original subject again (a
// live run, with a new Nats-Msg-Id) and removes it from the stream.
//
// Errors: *Error with CodeNotFound, wrapping jetstream.ErrMsgNotFound,
// when there is no dead letter seq.
func (d *DeadLetters) Replay(ctx context.Context, seq uint64) (DeadLetter, error) {
	dl, err := d.store.Replay(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, &Error{Code: CodeNotFound, Message: noDeadLetter(seq), err: err}
	}
	return dl, err
}

func noDeadLetter(seq uint64) string {
	return "there is no dead letter " + strconv.FormatUint(seq, 10) + " (a replayed one is removed)"
}

// Rerun is the reply of dead.rerun: the test trigger published.
type Rerun struct {
	ID       string `json:"id"`
	ActionID string `json:"action_id"`
	// Seq is the dead letter's sequence (dead.rerun).
	Seq uint64 `json:"seq,omitempty"`
	// Of is the id of the trigger re-run (triggers.rerun).
	Of string `json:"of,omitempty"`
}

// Rerun publishes a copy of the dead letter seq as a test run: source
// "test", a new id, on the test subject of its action, every other member
// as it was. The dead letter stays (Replay is the live run).
//
// Errors: *Error with CodeNotFound when there is no dead letter seq, or
// CodeBadRequest when its data is not a trigger with a valid action id.
func (d *DeadLetters) Rerun(ctx context.Context, seq uint64) (Rerun, error) {
	list, err := d.List(ctx)
	if err != nil {
		return Rerun{}, err
	}
	var dl *DeadLetter
	for i := range list {
		if list[i].Seq == seq {
			dl = &list[i]
		}
	}
	if dl == nil {
		return Rerun{}, &Error{Code: CodeNotFound, Message: noDeadLetter(seq), err: jetstream.ErrMsgNotFound}
	}
	r, err := rerunAsTest(ctx, d.pub, d.subjects, dl.Data, fmt.Sprintf("dead letter %d", seq))
	r.Seq = seq
	return r, err
}

// rerunAsTest publishes a copy of the trigger data (what names it in
// messages) as a test run: source test, a new id, on the test subject of
// its action.
func rerunAsTest(ctx context.Context, pub Publisher, subjects events.Subjects, data []byte, what string) (Rerun, error) {
	var t map[string]json.RawMessage
	if err := json.Unmarshal(data, &t); err != nil || t == nil {
		return Rerun{}, errorf(CodeBadRequest, "%s is not a JSON trigger: it cannot be re-run", what)
	}
	var actionID string
	if err := json.Unmarshal(t["action_id"], &actionID); err != nil || !events.ValidID(actionID) {
		return Rerun{}, errorf(CodeBadRequest, "%s has no valid action_id: it cannot be re-run", what)
	}
	id := "rerun_" + nuid.Next()
	t["id"], _ = json.Marshal(id)
	t["source"], _ = json.Marshal(events.SourceTest)
	out, err := json.Marshal(t)
	if err != nil {
		return Rerun{}, err
	}
	msg := &nats.Msg{Subject: subjects.Trigger(events.SourceTest, actionID), Data: bytes.TrimSpace(out), Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	if _, err := pub.PublishMsg(ctx, msg); err != nil {
		return Rerun{}, errorf(CodeInternal, "publish the test run of %s: %v", what, err)
	}
	return Rerun{ID: id, ActionID: actionID}, nil
}

func (a *Service) deadLetters() (*DeadLetters, error) {
	if a.dead == nil {
		return nil, errorf(CodeInternal, "dead letters are not available from this service")
	}
	return a.dead, nil
}

// decodeSeq reads a request {"seq": n}.
func decodeSeq(data []byte) (uint64, error) {
	var req struct {
		Seq uint64 `json:"seq"`
	}
	if err := decodeStrict(data, &req); err != nil {
		return 0, err
	}
	if req.Seq == 0 {
		return 0, errorf(CodeBadRequest, "seq must be the sequence number of a dead letter (the seq of dead.list)")
	}
	return req.Seq, nil
}
