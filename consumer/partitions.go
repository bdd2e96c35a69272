package consumer

// Trigger partitions (Config.Partitions): one trigger stream has one
// leader, which carries every publish, delivery and ack of the fleet. With
// partitions the server's subject mapping spreads the triggers over
// streams TriggerStream_P0 .. _P<n-1> by action id, each with its own
// leader, and every replica consumes all of them through one pool of
// workers.

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/events"
)

// PartitionStream is the name of the stream of trigger partition k.
func (c Config) PartitionStream(k int) string { return c.TriggerStream + "_P" + strconv.Itoa(k) }

// partitionStreamConfig is the stream of partition k: the trigger stream's
// settings on the partition's subjects.
func partitionStreamConfig(cfg Config, k int) jetstream.StreamConfig {
	return triggerStreamConfig(cfg, cfg.PartitionStream(k), events.NewSubjects(cfg.Prefix).PartitionWildcard(k),
		fmt.Sprintf("Custom Actions triggers, partition %d (work queue)", k))
}

// setupPartitions creates the streams of cfg.Partitions and the shared
// durable consumer on each, and attaches to the partition streams that
// exist beyond them (left from a larger setting, or made by a replica
// with a larger one), so that their triggers are still executed.
func setupPartitions(ctx context.Context, js jetstream.JetStream, cfg Config) ([]jetstream.Consumer, error) {
	want := map[int]bool{}
	if cfg.Partitions > 1 {
		for k := range cfg.Partitions {
			want[k] = true
		}
	}
	if err := shortTries(ctx, func(ctx context.Context) error {
		names := js.StreamNames(ctx, jetstream.WithStreamListSubject(cfg.Prefix+".partition.>"))
		for name := range names.Name() {
			if k, ok := strings.CutPrefix(name, cfg.TriggerStream+"_P"); ok {
				if n, err := strconv.Atoi(k); err == nil && n >= 0 && n < events.MaxPartitions && cfg.PartitionStream(n) == name {
					want[n] = true
				}
			}
		}
		return names.Err()
	}); err != nil {
		return nil, fmt.Errorf("list trigger partitions: %w", err)
	}
	var out []jetstream.Consumer
	for k := range events.MaxPartitions {
		if !want[k] {
			continue
		}
		sc := partitionStreamConfig(cfg, k)
		if k < cfg.Partitions {
			if err := ensureStream(ctx, js, sc); err != nil {
				return nil, err
			}
		}
		cons, err := ensureConsumer(ctx, js, sc.Name, consumerConfig(cfg))
		if err != nil {
			return nil, err
		}
		out = append(out, cons)
	}
	return out, nil
}

// ensureConsumer returns the durable consumer want on stream, creating or
// updating it unless it is as wanted.
func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream string, want jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	var cons jetstream.Consumer
	err := shortTries(ctx, func(ctx context.Context) (err error) {
		if c, err := js.Consumer(ctx, stream, want.Durable); err == nil && consumerUpToDate(c.CachedInfo().Config, want) {
			cons = c
			return nil
		}
		cons, err = js.CreateOrUpdateConsumer(ctx, stream, want)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", want.Durable, stream, err)
	}
	return cons, nil
}
