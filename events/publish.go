package events

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publisher publishes results and log events to JetStream.
type Publisher struct {
	js       jetstream.JetStream
	subjects Subjects
	// bufs holds encode buffers: a message's bytes are kept by the client
	// until JetStream acknowledged it, then reused.
	bufs sync.Pool
}

// NewPublisher returns a Publisher that publishes with js under subjects.
func NewPublisher(js jetstream.JetStream, subjects Subjects) *Publisher {
	p := &Publisher{js: js, subjects: subjects}
	p.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	return p
}

// Pending is a publish under way; Wait returns once JetStream stored it.
type Pending struct {
	fut jetstream.PubAckFuture
	pub *Publisher
	buf *[]byte // the encoded message, back to the pool once stored
	err error
}

// Wait blocks until the message is stored, the publish fails, or ctx ends.
// Call it once: a stored message's buffer goes back to the pool.
func (p Pending) Wait(ctx context.Context) error {
	if p.err != nil {
		return p.err
	}
	select {
	case <-p.fut.Ok():
		p.pub.putBuf(p.buf)
		return nil
	case err := <-p.fut.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StoreResult publishes r on Subjects.ResultFor(r.ActionID) with Nats-Msg-Id "result-<trigger id>", so a
// trigger executed twice inside the duplicate window stores one result, and
// waits until JetStream stored it (or ctx ends). The publish is synchronous:
// its ack comes back on the connection's request path, with no per-message
// future, which is the cheaper way when the caller waits at once.
func (p *Publisher) StoreResult(ctx context.Context, r *Result) error {
	subject := p.subjects.ResultFor(r.ActionID)
	buf := p.getBuf()
	msg := &nats.Msg{Subject: subject, Data: r.AppendJSON(*buf),
		Header: nats.Header{jetstream.MsgIDHeader: []string{"result-" + r.TriggerID}}}
	_, err := p.js.PublishMsg(ctx, msg)
	if err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	// The connection copied the message; nothing refers to it any more.
	*buf = msg.Data[:0]
	p.putBuf(buf)
	return nil
}

// Log starts publishing e on Subjects.LogFor(e.ActionID). A non-empty msgID deduplicates it (for the log
// event that goes with a result, so a redelivered trigger logs it once).
func (p *Publisher) Log(e *LogEvent, msgID string) Pending {
	return p.publish(p.subjects.LogFor(e.ActionID), msgID, e)
}

// Connection starts publishing e on Subjects.Connection(e.TokenID),
// deduplicated by msgID when set.
func (p *Publisher) Connection(e *ConnectionEvent, msgID string) Pending {
	return p.publish(p.subjects.Connection(e.TokenID), msgID, e)
}

// appender is a message that encodes itself without reflection.
type appender interface{ AppendJSON([]byte) []byte }

func (p *Publisher) getBuf() *[]byte { b := p.bufs.Get().(*[]byte); *b = (*b)[:0]; return b }

// putBuf returns b to the pool, unless it grew past what is worth keeping.
func (p *Publisher) putBuf(b *[]byte) {
	if b != nil && cap(*b) <= 64<<10 {
		p.bufs.Put(b)
	}
}

func (p *Publisher) publish(subject, msgID string, v any) Pending {
	var (
		data []byte
		buf  *[]byte
	)
	if a, ok := v.(appender); ok {
		buf = p.getBuf()
		data = a.AppendJSON(*buf)
		*buf = data
	} else {
		var err error
		if data, err = json.Marshal(v); err != nil {
			return Pending{err: fmt.Errorf("encode %s: %w", subject, err)}
		}
	}
	msg := &nats.Msg{Subject: subject, Data: data}
	if msgID != "" {
		msg.Header = nats.Header{jetstream.MsgIDHeader: []string{msgID}}
	}
	fut, err := p.js.PublishMsgAsync(msg)
	if err != nil {
		return Pending{err: fmt.Errorf("publish %s: %w", subject, err)}
	}
	return Pending{fut: fut, pub: p, buf: buf}
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
