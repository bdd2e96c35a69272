package consumer

import (
	"errors"
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
// nothing pending an ack, no message dropped) until the client's
// missed-heartbeat timer pulled again, which with nats.go's defaults (30 s
// pulls, 15 s heartbeats) is 30 s; closed-loop runs fell from
// 3 000-4 500/s to 550-980/s, p99 30 s
// (perf/results-2026-11-26-source-ab.txt). With 1 s heartbeats such a
// stall lasts 2 s. The cost: an idle process gets one heartbeat a second
// and sends one pull every 5 s per trigger stream.
//
// The pull iterator (Messages), not Consume: the same A/B measured
// Consume stalling so more often (5 of 8 runs against 2 of 8 under a CPU
// hog, 2 of 2 against 0 of 4 without), at the same throughput otherwise.
const (
	pullExpiry    = 5 * time.Second
	pullHeartbeat = time.Second
)

// pull starts pulling from the trigger stream and its partitions.
func (s *Service) pull() (triggerSource, error) {
	var its []jetstream.MessagesContext
	for _, c := range s.res.triggerConsumers() {
		it, err := c.Messages(jetstream.PullMaxMessages(s.cfg.pullBatch()),
			jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat))
		if err != nil {
			for _, it := range its {
				it.Stop()
			}
			return nil, fmt.Errorf("pull triggers from %s: %w", c.CachedInfo().Stream, err)
		}
		its = append(its, it)
	}
	if len(its) == 1 {
		return its[0], nil
	}
	return s.merge(its), nil
}

// pulled is a trigger, or the error of a pull.
type pulled struct {
	msg jetstream.Msg
	err error
}

// merged hands out the triggers of several pull iterators through one
// Next. A goroutine per iterator waits for its next trigger and hands it to
// whichever worker asks first, so a busy partition takes every free worker
// and an idle one holds none.
type merged struct {
	its []jetstream.MessagesContext
	ch  chan pulled
}

// merge starts handing out the triggers of its. The first of them is the
// unpartitioned trigger stream: a well-formed trigger arriving there while
// partitions are on means the server lacks the partition mapping, which
// the log is told once.
func (s *Service) merge(its []jetstream.MessagesContext) *merged {
	m := &merged{its: its, ch: make(chan pulled)}
	var wg sync.WaitGroup
	var warn sync.Once
	for i, it := range its {
		wg.Go(func() {
			for {
				msg, err := it.Next()
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return
				}
				if i == 0 && err == nil {
					if _, _, perr := s.subjects.ParseTrigger(msg.Subject()); perr == nil {
						warn.Do(func() {
							s.log.Warn("triggers arrive on the unpartitioned stream although partitions are set: add the partition mapping to the producers' account (see PROTOCOL.md); they are executed all the same",
								"subject", msg.Subject())
						})
					}
				}
				m.ch <- pulled{msg, err}
			}
		})
	}
	go func() { wg.Wait(); close(m.ch) }()
	return m
}

// Next returns the next trigger of any iterator, and
// jetstream.ErrMsgIteratorClosed once all are drained.
func (m *merged) Next(...jetstream.NextOpt) (jetstream.Msg, error) {
	p, ok := <-m.ch
	if !ok {
		return nil, jetstream.ErrMsgIteratorClosed
	}
	return p.msg, p.err
}

// Drain stops every iterator's pulls; the triggers they buffered are still
// handed out.
func (m *merged) Drain() {
	for _, it := range m.its {
		it.Drain()
	}
}
