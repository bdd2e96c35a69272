package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"customactions/consumer"
	"customactions/events"
)

// runDead lists and replays dead-lettered triggers.
func runDead(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		fmt.Fprintln(stderr, "usage: consumer dead list | replay SEQ... | replay all")
		return exitCode(2)
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
	cfg := s.consumerConfig()
	list, err := consumer.ListDeadLetters(ctx, c.js, cfg)
	if err != nil {
		return err
	}
	if args[0] == "list" {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tTRIGGER\tSUBJECT\tREASON")
		for _, d := range list {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", d.Seq, events.FormatTime(d.Time), d.TriggerID, d.Subject, d.Reason)
		}
		return tw.Flush()
	}
	var seqs []uint64
	for _, a := range args[1:] {
		if a == "all" {
			for _, d := range list {
				seqs = append(seqs, d.Seq)
			}
			continue
		}
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			return fmt.Errorf("dead replay: %q is not a sequence number", a)
		}
		seqs = append(seqs, n)
	}
	for _, seq := range seqs {
		d, err := consumer.ReplayDeadLetter(ctx, c.js, cfg, seq)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "replayed %d: trigger %s to %s\n", seq, d.TriggerID, d.Subject)
	}
	return nil
}
