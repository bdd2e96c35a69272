package events

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publisher publishes results and log events to JetStream.
type Publisher struct {
	js       jetstream.JetStream
	subjects Subjects
}

// NewPublisher returns a Publisher that publishes with js under subjects.
func NewPublisher(js jetstream.JetStream, subjects Subjects) *Publisher {
	return &Publisher{js: js, subjects: subjects}
}

// Pending is a publish under way; Wait returns once JetStream stored it.
type Pending struct {
	fut jetstream.PubAckFuture
	err error
}

// Wait blocks until the message is stored, the publish fails, or ctx ends.
func (p Pending) Wait(ctx context.Context) error {
	if p.err != nil {
		return p.err
	}
	select {
	case <-p.fut.Ok():
		return nil
	case err := <-p.fut.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Result starts publishing r with Nats-Msg-Id "result-<trigger id>", so a
// trigger executed twice inside the duplicate window stores one result.
func (p *Publisher) Result(r *Result) Pending {
	return p.publish(p.subjects.Result(r.ActionID), "result-"+r.TriggerID, r)
}

// Log starts publishing e. A non-empty msgID deduplicates it (for the log
// event that goes with a result, so a redelivered trigger logs it once).
func (p *Publisher) Log(e *LogEvent, msgID string) Pending {
	return p.publish(p.subjects.Log(e.ActionID), msgID, e)
}

// appender is a message that encodes itself without reflection.
type appender interface{ AppendJSON([]byte) []byte }

func (p *Publisher) publish(subject, msgID string, v any) Pending {
	var data []byte
	if a, ok := v.(appender); ok {
		data = a.AppendJSON(make([]byte, 0, 512))
	} else {
		var err error
		if data, err = json.Marshal(v); err != nil {
			return Pending{err: fmt.Errorf("encode %s: %w", subject, err)}
		}
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	if msgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	fut, err := p.js.PublishMsgAsync(msg)
	if err != nil {
		return Pending{err: fmt.Errorf("publish %s: %w", subject, err)}
	}
	return Pending{fut: fut}
}

// WaitAll waits for every pending publish and returns the first error.
func WaitAll(ctx context.Context, ps ...Pending) error {
	var first error
	for _, p := range ps {
		if err := p.Wait(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}
