package consumer

import (
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// triggerSource hands out triggers to the workers.
type triggerSource interface {
	// Next waits for the next trigger; it returns
	// jetstream.ErrMsgIteratorClosed once the source is drained.
	Next(...jetstream.NextOpt) (jetstream.Msg, error)
	// Drain stops pulling; the triggers already pulled are still handed
	// out.
	Drain()
}

// consumed hands out the triggers of the trigger stream and its
// partitions. Each is consumed with jetstream's Consume, whose handler
// gives a trigger to a free worker and waits until one takes it.
//
// Not the Messages iterator: it buffers delivered triggers in a channel
// the size of the pull, and a message that finds the channel full is
// dropped by the client (a slow consumer) and comes back only after
// AckWait. The channel is full when the client's count of triggers still
// to come is reset while the server still sends them, which the iterator
// does on a missed heartbeat, a reconnect or a leader change; a heartbeat
// is missed by a busy process, and a missed one then cost 30 s stalls
// (closed-loop runs on the local cluster fell from about 5 000/s to 600
// and 980/s, p99 30 s, perf/results-2026-11-26-cluster.txt). Consume keeps the
// triggers in the subscription's queue instead (nothing dropped), counts
// a trigger as arrived only once a worker took it (so a saturated process
// asks for no more), and does not count the time its handler waits as a
// missed heartbeat.
type consumed struct {
	ccs []jetstream.ConsumeContext
	ch  chan jetstream.Msg
}

// pull starts consuming the trigger stream and its partitions.
func (s *Service) pull() (triggerSource, error) {
	c := &consumed{ch: make(chan jetstream.Msg)}
	all := append([]jetstream.Consumer{s.res.Triggers}, s.res.Partitions...)
	for i, cons := range all {
		stream := cons.CachedInfo().Stream
		var warn sync.Once
		handler := func(msg jetstream.Msg) {
			if i == 0 && len(all) > 1 {
				if _, _, err := s.subjects.ParseTrigger(msg.Subject()); err == nil {
					warn.Do(func() {
						s.log.Warn("triggers arrive on the unpartitioned stream although partitions are set: add the partition mapping to the producers' account (see PROTOCOL.md); they are executed all the same",
							"subject", msg.Subject())
					})
				}
			}
			c.ch <- msg
		}
		cc, err := cons.Consume(handler, jetstream.PullMaxMessages(s.cfg.pullBatch()),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				s.log.Warn("pull triggers", "stream", stream, "err", err)
			}))
		if err != nil {
			for _, cc := range c.ccs {
				cc.Stop()
			}
			return nil, fmt.Errorf("pull triggers from %s: %w", stream, err)
		}
		c.ccs = append(c.ccs, cc)
	}
	go func() {
		for _, cc := range c.ccs {
			<-cc.Closed()
		}
		close(c.ch)
	}()
	return c, nil
}

// Next returns the next trigger of any stream, and
// jetstream.ErrMsgIteratorClosed once all are drained.
func (c *consumed) Next(...jetstream.NextOpt) (jetstream.Msg, error) {
	msg, ok := <-c.ch
	if !ok {
		return nil, jetstream.ErrMsgIteratorClosed
	}
	return msg, nil
}

// Drain stops the pulls; the triggers already delivered are still handed
// out.
func (c *consumed) Drain() {
	for _, cc := range c.ccs {
		cc.Drain()
	}
}
