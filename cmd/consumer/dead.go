package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/admin"
	"customactions/consumer"
	"customactions/events"
)

const deadUsage = "usage: consumer dead list | replay SEQ... | replay all"

// deadStore is the dead-letter stream of cfg for admin.DeadLetters.
type deadStore struct {
	js  jetstream.JetStream
	cfg consumer.Config
}

func (d deadStore) List(ctx context.Context) ([]admin.DeadLetter, error) {
	list, err := consumer.ListDeadLetters(ctx, d.js, d.cfg)
	out := make([]admin.DeadLetter, 0, len(list))
	for _, l := range list {
		out = append(out, deadView(l))
	}
	return out, err
}

func (d deadStore) Replay(ctx context.Context, seq uint64) (admin.DeadLetter, error) {
	l, err := consumer.ReplayDeadLetter(ctx, d.js, d.cfg, seq)
	return deadView(l), err
}

func deadView(l consumer.DeadLetter) admin.DeadLetter {
	v := admin.DeadLetter{Seq: l.Seq, TriggerID: l.TriggerID, Subject: l.Subject, OriginalSeq: l.OriginalSeq,
		Reason: l.Reason, Data: l.Data}
	if !l.Time.IsZero() {
		v.Time = events.FormatTime(l.Time)
	}
	// The dead-letter subject is <prefix>.dead.<action_id> (PROTOCOL.md §8).
	if i := strings.LastIndexByte(l.DeadLetterTopic, '.'); i >= 0 {
		v.ActionID = l.DeadLetterTopic[i+1:]
	}
	return v
}

// newDeadLetters returns the dead letters of the installation of cfg.
func newDeadLetters(js jetstream.JetStream, cfg consumer.Config) *admin.DeadLetters {
	return admin.NewDeadLetters(cfg.Prefix, deadStore{js: js, cfg: cfg.WithDefaults()}, js)
}

// runDead lists and replays dead-lettered triggers, through the same
// admin.DeadLetters as the web UI's dead.* requests, straight on the
// dead-letter stream (it works while the service is down).
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
	cfg := s.consumerConfig().WithDefaults()
	dead := newDeadLetters(c.js, cfg)
	list, err := dead.List(ctx)
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
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", d.Seq, d.Time, d.TriggerID, d.Subject, d.Reason)
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
		d, err := dead.Replay(ctx, seq)
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
