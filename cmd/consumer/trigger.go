package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"customactions/consumer"
	"customactions/events"
)

// headerFlags collects repeated -H "Name: value" flags.
type headerFlags map[string]string

func (h headerFlags) String() string { return "" }
func (h headerFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("header %q must be Name: value", v)
	}
	h[strings.TrimSpace(name)] = strings.TrimSpace(value)
	return nil
}

func runTrigger(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trigger", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "trigger JSON file (- for stdin); flags below override its fields")
	id := fs.String("id", "", "trigger id (default: a new unique id)")
	action := fs.String("action", "", "action id")
	source := fs.String("source", "", "inbox, bot or test (default inbox)")
	token := fs.String("token", "", "token id")
	endUser := fs.String("user", "", "end user id (end_user.id: a per_end_user token calls as them)")
	method := fs.String("method", "", "HTTP method (default GET, POST with -body)")
	url := fs.String("url", "", "action URL")
	body := fs.String("body", "", "request body")
	timeout := fs.Int64("timeout-ms", 0, "per-attempt timeout in ms")
	ctxJSON := fs.String("context", "", "context JSON object")
	wait := fs.Duration("wait", 60*time.Second, "how long to wait for the result (0: do not wait)")
	headers := headerFlags{}
	fs.Var(headers, "H", "request header \"Name: value\" (repeatable)")
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("trigger: unexpected argument %q: every field is a flag (-action, -url ...) or in the -f file", fs.Arg(0))
	}
	t := &events.Trigger{}
	if *file != "" {
		data, err := readFileArg(*file)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, t); err != nil {
			return fmt.Errorf("trigger: %w", describeJSONError(*file, "one trigger", err))
		}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&t.ID, *id)
	set(&t.ActionID, *action)
	set(&t.Source, *source)
	set(&t.TokenID, *token)
	if *endUser != "" {
		t.EndUser = &events.EndUser{ID: *endUser}
	}
	set(&t.Request.Method, *method)
	set(&t.Request.URL, *url)
	set(&t.Request.Body, *body)
	if *timeout > 0 {
		t.Request.TimeoutMS = *timeout
	}
	if *ctxJSON != "" {
		t.Context = json.RawMessage(*ctxJSON)
	}
	if len(headers) > 0 && t.Request.Headers == nil {
		t.Request.Headers = map[string]string{}
	}
	for k, v := range headers {
		t.Request.Headers[k] = v
	}
	if t.ID == "" {
		t.ID = "trg_" + nuid.Next()
	}
	if t.Source == "" {
		t.Source = events.SourceInbox
	}
	if t.Request.Method == "" {
		t.Request.Method = "GET"
		if t.Request.Body != "" {
			t.Request.Method = "POST"
		}
	}
	if t.ActionID == "" {
		return fmt.Errorf("trigger: -action (or action_id in the file) is required")
	}

	s, err := loadSettings(getenv)
	if err != nil {
		return err
	}
	if err := checkIDs(events.NewSubjects(s.Prefix), t); err != nil {
		return err // before connecting: nothing to wait for
	}
	c, err := connectClient(s)
	if err != nil {
		return err
	}
	defer c.close()
	gctx, stop := c.guard(ctx)
	defer stop()
	published := func(ack *jetstream.PubAck) {
		fmt.Fprintf(stderr, "published trigger %s to %s (stream %s, seq %d)\n", t.ID,
			events.NewSubjects(s.Prefix).Trigger(t.Source, t.ActionID), ack.Stream, ack.Sequence)
	}
	r, raw, err := publishTrigger(gctx, c.nc, c.js, events.NewSubjects(s.Prefix), t, *wait, published)
	if err = explain(gctx, err); err != nil {
		var pe *permissionError
		if errors.As(err, &pe) && pe.Op == "subscribe to" {
			return fmt.Errorf("trigger: %w; or publish without waiting for the result (-wait 0)", err)
		}
		return fmt.Errorf("trigger: %w", err)
	}
	if *wait == 0 {
		return nil
	}
	out, _ := json.MarshalIndent(json.RawMessage(raw), "", "  ")
	fmt.Fprintln(stdout, string(out))
	if r.Status != events.StatusSucceeded {
		return exitCode(3)
	}
	return nil
}

// publishTrigger publishes t with its id as Nats-Msg-Id and, when wait is
// positive, waits that long for its result, which it returns parsed and as
// received. published, if set, is called once JetStream stored the trigger.
//
// The ids that name the subject and the Nats-Msg-Id header are checked
// first (checkIDs), so it never publishes on a malformed subject; the rest
// of the trigger is left to the consumer, whose rejection is the result.
func publishTrigger(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, subjects events.Subjects, t *events.Trigger,
	wait time.Duration, published func(*jetstream.PubAck)) (*events.Result, []byte, error) {
	if err := checkIDs(subjects, t); err != nil {
		return nil, nil, err
	}
	results := make(chan *nats.Msg, 64)
	if wait > 0 {
		sub, err := nc.ChanSubscribe(subjects.Result(t.ActionID), results)
		if err != nil {
			return nil, nil, err
		}
		defer func() { _ = sub.Unsubscribe() }()
		if err := subscribeAllowed(nc, subjects.Result(t.ActionID)); err != nil {
			return nil, nil, err // before publishing: nobody could see its result
		}
	}
	data, err := json.Marshal(t)
	if err != nil {
		return nil, nil, err
	}
	msg := &nats.Msg{Subject: subjects.Trigger(t.Source, t.ActionID), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, t.ID)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(pctx, msg)
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		return nil, nil, fmt.Errorf("publish trigger: no stream takes %s: has the service started, with ACTIONS_PREFIX=%s, on this NATS (NATS_URL)? It creates the stream", msg.Subject, subjects.Prefix)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("publish trigger: %w", err)
	}
	if published != nil {
		published(ack)
	}
	if wait <= 0 {
		return nil, nil, nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-timer.C:
			return nil, nil, fmt.Errorf("no result for trigger %s within %s", t.ID, wait)
		case m := <-results:
			var r events.Result
			if json.Unmarshal(m.Data, &r) == nil && r.TriggerID == t.ID {
				return &r, m.Data, nil
			}
		}
	}
}

// checkIDs reports the first id of t that would make its subject
// malformed or its Nats-Msg-Id header unusable: the prefix, the action id
// and the token id must match ^[A-Za-z0-9_-]{1,128}$, the source be inbox,
// bot or test, and the trigger id be 1 to 128 bytes of UTF-8 without
// control characters (the contract's rule; it is sent as a header value).
func checkIDs(subjects events.Subjects, t *events.Trigger) error {
	switch {
	case consumer.ValidatePrefix(subjects.Prefix) != nil:
		return fmt.Errorf("trigger: ACTIONS_PREFIX: %w", consumer.ValidatePrefix(subjects.Prefix))
	case !events.ValidID(t.ActionID):
		return fmt.Errorf("trigger: action id %q (-action or action_id) must match ^[A-Za-z0-9_-]{1,128}$", t.ActionID)
	case !events.ValidSource(t.Source):
		return fmt.Errorf("trigger: source %q (-source or source) must be inbox, bot or test", t.Source)
	case t.TokenID != "" && !events.ValidID(t.TokenID):
		return fmt.Errorf("trigger: token id %q (-token or token_id) must match ^[A-Za-z0-9_-]{1,128}$", t.TokenID)
	case !events.ValidTriggerID(t.ID):
		return fmt.Errorf("trigger: trigger id %q (-id or id) must be 1 to 128 bytes of UTF-8 without control characters", t.ID)
	}
	return nil
}

func readFileArg(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(name)
}
