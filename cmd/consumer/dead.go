package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/consumer"
	"customactions/events"
)

const deadUsage = "usage: consumer dead list | replay SEQ... | replay all"

// runDead lists and replays dead-lettered triggers.
func runDead(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		fmt.Fprintln(stderr, deadUsage)
		return exitCode(2)
	}
	switch {
	case args[0] == "list" && len(args) > 1:
		return fmt.Errorf("dead list: unexpected argument %q: list takes none", args[1])
	case args[0] == "replay" && len(args) == 1:
		return errors.New("dead replay: give the sequence numbers to replay (the SEQ column of consumer dead list) or all")
	}
	// Parse every argument before replaying any, so a typo replays nothing.
	all := false
	var seqs []uint64
	for _, a := range args[1:] {
		if a == "all" {
			all = true
			continue
		}
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("dead replay: %q is not a sequence number (the SEQ column of consumer dead list) or all", a)
		}
		seqs = append(seqs, n)
	}
	s, err := loadSettings(getenv)
	if err != nil {
		return err
	}
	c, err := connectClient(s)
	if err != nil {
		return err
	}
	defer c.close()
	ctx, stop := c.guard(ctx)
	defer stop()
	cfg := s.consumerConfig()
	list, err := consumer.ListDeadLetters(ctx, c.js, cfg)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("dead %s: there is no dead-letter stream %s: has the service run with ACTIONS_PREFIX=%s on this NATS (NATS_URL)?", args[0], cfg.DeadStream, s.Prefix)
	}
	if err != nil {
		return fmt.Errorf("dead %s: %w", args[0], explain(ctx, err))
	}
	if args[0] == "list" {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tTRIGGER\tSUBJECT\tREASON")
		for _, d := range list {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", d.Seq, events.FormatTime(d.Time), d.TriggerID, d.Subject, d.Reason)
		}
		return tw.Flush()
	}
	if all {
		for _, d := range list {
			seqs = append(seqs, d.Seq)
		}
		if len(seqs) == 0 {
			fmt.Fprintln(stdout, "no dead letters to replay")
			return nil
		}
	}
	for _, seq := range seqs {
		d, err := consumer.ReplayDeadLetter(ctx, c.js, cfg, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("dead replay: there is no dead letter %d in %s (consumer dead list shows them; a replayed one is removed)", seq, cfg.DeadStream)
		}
		if err != nil {
			return fmt.Errorf("dead replay: %w", explain(ctx, err))
		}
		fmt.Fprintf(stdout, "replayed %d: trigger %s to %s\n", seq, d.TriggerID, d.Subject)
	}
	return nil
}
