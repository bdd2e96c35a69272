package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/events"
)

func runLogs(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	follow := fs.Bool("f", false, "follow: keep printing new log events")
	output := fs.String("o", "text", "output: text or json (one event per line)")
	since := fs.Duration("since", 0, "only events newer than this (e.g. 1h); 0: all")
	if err := fs.Parse(reorderFlags(fs, args)); err != nil {
		return exitCode(2)
	}
	if err := checkOutput("logs", *output); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("logs: unexpected argument %q: give at most one action id", fs.Arg(1))
	}
	s, err := loadSettings(getenv)
	if err != nil {
		return err
	}
	subjects := events.NewSubjects(s.Prefix)
	filter := subjects.LogWildcard()
	if fs.NArg() > 0 {
		if !events.ValidID(fs.Arg(0)) {
			return fmt.Errorf("logs: %q is not a valid action id", fs.Arg(0))
		}
		filter = subjects.Log(fs.Arg(0))
	}
	c, err := connectClient(s)
	if err != nil {
		return err
	}
	defer c.close()
	parent := ctx
	ctx, stop := c.guard(ctx)
	defer stop()
	name := s.consumerConfig().LogStream
	stream, err := c.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("logs: there is no log stream %s: has the service run with ACTIONS_PREFIX=%s on this NATS (NATS_URL)?", name, s.Prefix)
	}
	if err != nil {
		return fmt.Errorf("logs: log stream %s: %w", name, explain(ctx, err))
	}
	occ := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}}
	if *since > 0 {
		start := time.Now().Add(-*since)
		occ.DeliverPolicy, occ.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := stream.OrderedConsumer(ctx, occ)
	if err != nil {
		return fmt.Errorf("logs: %w", explain(ctx, err))
	}
	// ended reports how the loop ends once ctx is done: a permissions
	// violation is an error, the caller's end (Ctrl-C) is not.
	ended := func() error {
		if parent.Err() != nil {
			return nil
		}
		return fmt.Errorf("logs: %w", explain(ctx, ctx.Err()))
	}
	for {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			if ctx.Err() != nil {
				return ended()
			}
			return fmt.Errorf("logs: %w", explain(ctx, err))
		}
		n := 0
		for m := range batch.Messages() {
			n++
			printLog(stdout, m.Data(), *output)
			if meta, err := m.Metadata(); err == nil && meta.NumPending == 0 && !*follow {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("logs: %w", explain(ctx, err))
		}
		if ctx.Err() != nil {
			return ended()
		}
		if n == 0 && !*follow {
			return nil
		}
	}
}

// printLog writes one log event as a line of text or JSON.
func printLog(w io.Writer, data []byte, output string) {
	if output == "json" {
		fmt.Fprintln(w, string(data))
		return
	}
	var e events.LogEvent
	if err := json.Unmarshal(data, &e); err != nil {
		fmt.Fprintln(w, string(data))
		return
	}
	line := fmt.Sprintf("%s %-5s %-20s %s", e.Time, e.Level, e.Event, e.ActionID)
	if e.TriggerID != "" {
		line += " trigger=" + e.TriggerID
	}
	if e.TokenID != "" {
		line += " token=" + e.TokenID
	}
	line += "  " + e.Message
	if len(e.Details) > 0 {
		keys := make([]string, 0, len(e.Details))
		for k := range e.Details {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			v, _ := json.Marshal(e.Details[k])
			parts = append(parts, k+"="+string(v))
		}
		line += "  " + strings.Join(parts, " ")
	}
	fmt.Fprintln(w, line)
}

// reorderFlags moves flags before positional arguments, so "logs ACTION -f"
// works as well as "logs -f ACTION".
func reorderFlags(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	takesValue := func(a string) bool {
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			return false
		}
		f := fs.Lookup(name)
		if f == nil {
			return false
		}
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		return !ok || !b.IsBoolFlag()
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") && a != "-" && !isNumber(a) {
			flags = append(flags, a)
			if takesValue(a) && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

// checkOutput refuses an -o other than text or json, which would otherwise
// print text as if nothing were wrong.
func checkOutput(cmd, output string) error {
	if output != "text" && output != "json" {
		return fmt.Errorf("%s: -o %q: use -o text (the default) or -o json", cmd, output)
	}
	return nil
}

// isNumber reports whether a is a number such as -3, a flag's value.
func isNumber(a string) bool {
	_, err := strconv.ParseFloat(a, 64)
	return err == nil
}
