package consumer

import (
	"fmt"
	"sync"
	"time"

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

// Pulls expire after pullExpiry and carry an idle heartbeat every
// pullHeartbeat; the client pulls again after two missed heartbeats. On
// the local cluster, with the cores saturated, the server sometimes held
// no pull request of the process while the client counted one
// outstanding: the triggers waited in the stream (nothing delivered,
// nothing pending an ack) until the client's missed-heartbeat timer pulled
// again, which with nats.go's defaults (30 s pulls, 15 s heartbeats) is
// 30 s; closed-loop runs fell from 3 000-4 500/s to 550-980/s, p99 30 s
// (perf/results-2026-11-26-source-ab.txt). With 1 s heartbeats such a
// stall lasts 2 s. The cost: an idle process gets one heartbeat a second
// and sends one pull every 5 s per trigger stream.
const (
	pullExpiry    = 5 * time.Second
	pullHeartbeat = time.Second
)

// consumed hands out the triggers of the trigger stream and its
// partitions. Each is consumed with jetstream's Consume, whose handler
// gives a trigger to a free worker and waits until one takes it. Not the
// Messages iterator: it buffers delivered triggers in a channel the size
// of the pull, and the client drops (as a slow consumer) a message that
// finds it full, which can happen whenever it pulls again while the
// server still sends an earlier pull's triggers (after a missed heartbeat,
// a reconnect or a leader change). Consume keeps them in the
// subscription's queue, counts a trigger as arrived only once a worker
// took it (so a saturated process asks for no more), and does not count
// the time its handler waits for a worker as a missed heartbeat.
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
			jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat),
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
