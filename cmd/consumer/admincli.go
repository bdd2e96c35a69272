package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"customactions/admin"
	"customactions/breaker"
	"customactions/events"
)

// adminRequest sends one admin request and returns the reply body, or the
// reply's error.
func adminRequest(ctx context.Context, s *settings, verb string, body any) (json.RawMessage, error) {
	c, err := connectClient(s)
	if err != nil {
		return nil, err
	}
	defer c.close()
	var data []byte
	switch b := body.(type) {
	case []byte:
		data = b
	default:
		if data, err = json.Marshal(b); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 35*time.Second)
	defer cancel()
	resource, action, _ := strings.Cut(verb, ".")
	type answer struct {
		msg *nats.Msg
		err error
	}
	answers := make(chan answer, 1)
	go func() {
		m, err := c.nc.RequestWithContext(ctx, events.NewSubjects(s.Prefix).Admin(resource, action), data)
		answers <- answer{m, err}
	}()
	var msg *nats.Msg
	select {
	case a := <-answers:
		if errors.Is(a.err, nats.ErrNoResponders) {
			return nil, fmt.Errorf("%s: no consumer answers admin requests on %s: is the service running, with ACTIONS_PREFIX=%s, on this NATS (NATS_URL)?",
				verb, events.NewSubjects(s.Prefix).Admin(resource, action), s.Prefix)
		}
		if a.err != nil {
			return nil, fmt.Errorf("%s: no answer (is the service running?): %w", verb, a.err)
		}
		msg = a.msg
	case err := <-c.errs:
		if pe := asPermissionError(err); pe != nil {
			return nil, fmt.Errorf("%s: %w", verb, pe)
		}
		return nil, fmt.Errorf("%s: %w", verb, err)
	}
	var e struct {
		Error *events.Error `json:"error"`
	}
	if json.Unmarshal(msg.Data, &e) == nil && e.Error != nil && e.Error.Code != "" {
		return msg.Data, e.Error
	}
	return msg.Data, nil
}

func printJSON(w io.Writer, data []byte) {
	var v any
	if json.Unmarshal(data, &v) != nil {
		fmt.Fprintln(w, string(data))
		return
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(w, string(out))
}

// adminCommand is what the tokens and breakers commands share: the verb,
// the -o flag, the request and how its errors are shown.
type adminCommand struct {
	resource, verb string
	fs             *flag.FlagSet
	output         *string
	getenv         func(string) string
}

// parseAdminCommand reads `<verb> [flags] [args]`; flags adds the
// command's own flags.
func parseAdminCommand(resource, usage string, args []string, getenv func(string) string, stderr io.Writer, flags func(*flag.FlagSet)) (*adminCommand, error) {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return nil, exitCode(2)
	}
	a := &adminCommand{resource: resource, verb: args[0], fs: flag.NewFlagSet(resource+" "+args[0], flag.ContinueOnError), getenv: getenv}
	a.fs.SetOutput(stderr)
	a.output = a.fs.String("o", "text", "output: text or json")
	if flags != nil {
		flags(a.fs)
	}
	if err := a.fs.Parse(reorderFlags(a.fs, args[1:])); err != nil {
		return nil, exitCode(2)
	}
	if err := checkOutput(resource+" "+a.verb, *a.output); err != nil {
		return nil, err
	}
	return a, nil
}

// args checks that the command got n positional arguments; what names
// them in the message ("one token id").
func (a *adminCommand) args(n int, what string) error {
	switch {
	case a.fs.NArg() > n && n == 0:
		return fmt.Errorf("%s %s: unexpected argument %q: %s %s takes none", a.resource, a.verb, a.fs.Arg(0), a.resource, a.verb)
	case a.fs.NArg() > n:
		return fmt.Errorf("%s %s: unexpected argument %q: give %s", a.resource, a.verb, a.fs.Arg(n), what)
	case a.fs.NArg() < n:
		return fmt.Errorf("%s %s: give %s", a.resource, a.verb, what)
	}
	return nil
}

// request sends the admin request. An error reply is printed (as JSON too
// with -o json) and ends the command with exit code 1; with -o json the
// reply is printed and done is true.
func (a *adminCommand) request(ctx context.Context, body any, stdout, stderr io.Writer) (reply json.RawMessage, done bool, err error) {
	s, err := loadSettings(a.getenv)
	if err != nil {
		return nil, true, err
	}
	reply, err = adminRequest(ctx, s, a.resource+"."+a.verb, body)
	if err != nil {
		if *a.output == "json" && reply != nil {
			printJSON(stdout, reply)
		}
		fmt.Fprintf(stderr, "consumer %s %s: %v\n", a.resource, a.verb, err)
		return nil, true, exitCode(1)
	}
	if *a.output == "json" {
		printJSON(stdout, reply)
		return reply, true, nil
	}
	return reply, false, nil
}

func runTokens(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var file *string
	a, err := parseAdminCommand("tokens", "usage: consumer tokens test|save -f FILE | get ID | list | delete ID | forget ID | usage ID | connect ID   [-o json]", args, getenv, stderr,
		func(fs *flag.FlagSet) { file = fs.String("f", "", "token JSON file (- for stdin)") })
	if err != nil {
		return err
	}
	var body any = map[string]string{}
	switch a.verb {
	case "test", "save":
		if err := a.args(0, ""); err != nil {
			return err
		}
		if *file == "" {
			return fmt.Errorf("tokens %s: -f FILE is required", a.verb)
		}
		data, err := readFileArg(*file)
		if err != nil {
			return fmt.Errorf("tokens %s: %w", a.verb, err)
		}
		if list, isArray, err := tokenArray(*file, data); err != nil {
			return fmt.Errorf("tokens %s: %w", a.verb, err)
		} else if isArray {
			if a.verb == "test" {
				return fmt.Errorf("tokens test: %s holds an array of %d tokens; test takes one token (tokens save -f tests each HTTP and oauth2 token before saving it)", *file, len(list))
			}
			return a.saveEach(ctx, *file, list, stdout, stderr)
		}
		body = data
	case "get", "delete", "forget", "usage", "connect":
		if err := a.args(1, "one token id"); err != nil {
			return err
		}
		body = map[string]string{"id": a.fs.Arg(0)}
	case "list":
		if err := a.args(0, ""); err != nil {
			return err
		}
	default:
		return fmt.Errorf("tokens: unknown command %q (test, save, get, list, delete, forget, usage, connect)", a.verb)
	}
	reply, done, err := a.request(ctx, body, stdout, stderr)
	if done {
		return err
	}
	switch a.verb {
	case "list":
		var r struct {
			Tokens []admin.TokenView `json:"tokens"`
		}
		_ = json.Unmarshal(reply, &r)
		printTokenTable(stdout, r.Tokens)
	case "test":
		var r admin.TestReply
		_ = json.Unmarshal(reply, &r)
		printTest(stdout, &r)
		if !r.OK {
			return exitCode(1)
		}
	case "delete":
		fmt.Fprintf(stdout, "token %s deleted\n", a.fs.Arg(0))
	case "forget":
		fmt.Fprintf(stdout, "fetched token of %s dropped on every replica: the next call fetches a new one\n", a.fs.Arg(0))
	case "usage":
		var u admin.Usage
		_ = json.Unmarshal(reply, &u)
		printUsage(stdout, &u)
	case "connect":
		var c admin.ConnectReply
		_ = json.Unmarshal(reply, &c)
		fmt.Fprintf(stdout, "open this link in a browser and log in at the provider to connect token %s\n(single use, valid for %s):\n\n  %s\n",
			a.fs.Arg(0), time.Duration(c.ExpiresInS)*time.Second, c.AuthorizationURL)
	case "get":
		var v admin.TokenView
		if json.Unmarshal(reply, &v) == nil && v.Token != nil {
			printTokenStatus(stdout, v)
		}
		printJSON(stdout, reply)
	default:
		printJSON(stdout, reply)
	}
	return nil
}

// printUsage prints the reply of tokens.usage, newest first.
func printUsage(w io.Writer, u *admin.Usage) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTION\tTRIGGER\tEVENT\tMESSAGE")
	for _, e := range u.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Time, e.ActionID, e.TriggerID, e.Event, e.Message)
	}
	_ = tw.Flush()
	switch {
	case len(u.Events) == 0 && u.Complete:
		fmt.Fprintf(w, "token %s was not used in the %d log events stored\n", u.TokenID, u.Scanned)
	case len(u.Events) == 0:
		fmt.Fprintf(w, "token %s was not used in the newest %d log events\n", u.TokenID, u.Scanned)
	case !u.Complete:
		fmt.Fprintf(w, "(from the newest %d log events)\n", u.Scanned)
	}
}

// printTokenTable prints the tokens of a list reply; STATUS is the health
// of an oauth2 token (ok, degraded, reauthorization_required), "-" for
// other types.
func printTokenTable(w io.Writer, tokens []admin.TokenView) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTYPE\tHEADER\tSECRET\tSTATUS\tLAST FETCHED\tEXPIRES\tDESCRIPTION")
	for _, t := range tokens {
		if t.Token == nil {
			continue
		}
		status := t.Status
		switch {
		case status == "" && t.OAuth2 != nil && t.OAuth2.PerEndUser:
			status = "per-end-user" // each end user's connection has its own: consumer connections list
		case status == "":
			status = "-"
		}
		secret, fetched, expires := "", "-", "-"
		if t.Token.Type == "text" {
			secret = string(t.Token.Value)
		} else if t.Fetched != nil {
			secret, fetched, expires = t.Fetched.TokenPreview, t.Fetched.FetchedAt, t.Fetched.ExpiresAt
			if expires == "" {
				expires = "-"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Type, t.Header, secret, status, fetched, expires, t.Description)
	}
	_ = tw.Flush()
}

// printTokenStatus prints, above the JSON of a get reply, the health of an
// oauth2 token: its status, since when, and the last error (masked).
func printTokenStatus(w io.Writer, v admin.TokenView) {
	if v.Status == "" && v.LastError == "" {
		return
	}
	status, since, lastErr := v.Status, v.StatusChangedAt, v.LastError
	if status == "" {
		status = "unknown (no connection)"
	}
	if since == "" {
		since = "-"
	}
	if lastErr == "" {
		lastErr = "-"
	}
	fmt.Fprintf(w, "status:      %s\nchanged at:  %s\nlast error:  %s\n\n", status, since, lastErr)
}

func printTest(w io.Writer, r *admin.TestReply) {
	if r.OK {
		fmt.Fprintln(w, "test passed")
	} else {
		fmt.Fprintln(w, "test FAILED:", r.Error)
	}
	if r.HTTPStatus != 0 {
		fmt.Fprintln(w, "auth status:", r.HTTPStatus)
	}
	if r.TokenPreview != "" {
		fmt.Fprintln(w, "token:", r.TokenPreview)
	}
	if r.ExpiresIn != 0 {
		fmt.Fprintf(w, "expires in: %ds\n", r.ExpiresIn)
	}
	if r.Response != nil {
		fmt.Fprintln(w, "response body:", r.Response.Body)
	}
}

func runBreakers(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	a, err := parseAdminCommand("breakers", "usage: consumer breakers list | reset ACTION_ID   [-o json]", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	var body any = map[string]string{}
	switch a.verb {
	case "list":
		if err := a.args(0, ""); err != nil {
			return err
		}
	case "reset":
		if err := a.args(1, "one action id"); err != nil {
			return err
		}
		body = map[string]string{"action_id": a.fs.Arg(0)}
	default:
		return fmt.Errorf("breakers: unknown command %q (list, reset)", a.verb)
	}
	reply, done, err := a.request(ctx, body, stdout, stderr)
	if done {
		return err
	}
	if a.verb == "reset" {
		fmt.Fprintf(stdout, "breaker of %s closed\n", a.fs.Arg(0))
		return nil
	}
	var r struct {
		Breakers []breaker.Status `json:"breakers"`
	}
	_ = json.Unmarshal(reply, &r)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tSTATE\tGENERATION\tOPEN UNTIL\tREASON")
	for _, b := range r.Breakers {
		until := "-"
		if b.State == breaker.Open {
			until = events.FormatTime(b.OpenUntil())
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", b.ActionID, b.State, b.Generation, until, b.Reason)
	}
	return tw.Flush()
}

func runLimits(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var rate *float64
	var burst, maxConc *int
	a, err := parseAdminCommand("limits", "usage: consumer limits set ACTION_ID [-rate N] [-burst N] [-max-concurrent N] | get ACTION_ID | list | delete ACTION_ID   [-o json]",
		args, getenv, stderr, func(fs *flag.FlagSet) {
			rate = fs.Float64("rate", 0, "calls per second across every replica (0: no limit)")
			burst = fs.Int("burst", 0, "calls above the rate allowed at once (default: the rate rounded up)")
			maxConc = fs.Int("max-concurrent", 0, "calls at once across every replica (0: no limit)")
		})
	if err != nil {
		return err
	}
	var body any = map[string]string{}
	switch a.verb {
	case "list":
		if err := a.args(0, ""); err != nil {
			return err
		}
	case "get", "delete":
		if err := a.args(1, "one action id"); err != nil {
			return err
		}
		body = map[string]string{"action_id": a.fs.Arg(0)}
	case "set":
		if err := a.args(1, "one action id"); err != nil {
			return err
		}
		body = breaker.Limits{ActionID: a.fs.Arg(0), Rate: *rate, Burst: *burst, MaxConcurrent: *maxConc}
	default:
		return fmt.Errorf("limits: unknown command %q (set, get, list, delete)", a.verb)
	}
	reply, done, err := a.request(ctx, body, stdout, stderr)
	if done {
		return err
	}
	var list []breaker.Limits
	switch a.verb {
	case "delete":
		fmt.Fprintf(stdout, "limits of %s deleted\n", a.fs.Arg(0))
		return nil
	case "list":
		var r struct {
			Limits []breaker.Limits `json:"limits"`
		}
		_ = json.Unmarshal(reply, &r)
		list = r.Limits
	default:
		var l breaker.Limits
		_ = json.Unmarshal(reply, &l)
		list = []breaker.Limits{l}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tRATE/S\tBURST\tMAX CONCURRENT\tUPDATED")
	show := func(v float64) string {
		if v == 0 {
			return "-"
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	for _, l := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.ActionID, show(l.Rate), show(float64(l.Burst)), show(float64(l.MaxConcurrent)), l.UpdatedAt)
	}
	return tw.Flush()
}

// runConnections lists and deletes the connections of authorization_code
// tokens: the end users' of a per_end_user token, or a workspace-wide
// token's own.
func runConnections(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var endUser *string
	var limit *int
	a, err := parseAdminCommand("connections", "usage: consumer connections list TOKEN_ID [-user END_USER_ID] [-limit N] | delete TOKEN_ID [END_USER_ID]   [-o json]",
		args, getenv, stderr, func(fs *flag.FlagSet) {
			endUser = fs.String("user", "", "list only this end user's connection")
			limit = fs.Int("limit", 0, "how many to list (default 100, at most 1000)")
		})
	if err != nil {
		return err
	}
	var body any
	switch a.verb {
	case "list":
		if err := a.args(1, "one token id"); err != nil {
			return err
		}
		body = admin.ListRequest{TokenID: a.fs.Arg(0), EndUserID: *endUser, Limit: *limit}
	case "delete":
		if *endUser != "" || *limit != 0 {
			return errors.New("connections delete: -user and -limit are for list; give the end user id after the token id")
		}
		switch a.fs.NArg() {
		case 1:
			body = map[string]string{"token_id": a.fs.Arg(0)}
		case 2:
			body = map[string]string{"token_id": a.fs.Arg(0), "end_user_id": a.fs.Arg(1)}
		default:
			if err := a.args(2, "a token id and, for a per_end_user token, an end user id"); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("connections: unknown command %q (list, delete)", a.verb)
	}
	reply, done, err := a.request(ctx, body, stdout, stderr)
	if done {
		return err
	}
	if a.verb == "delete" {
		var d admin.DeleteReply
		_ = json.Unmarshal(reply, &d)
		who := "the workspace"
		if a.fs.NArg() == 2 {
			who = "end user " + a.fs.Arg(1)
		}
		switch {
		case d.Revoked:
			fmt.Fprintf(stdout, "connection of token %s for %s revoked at the provider and deleted\n", a.fs.Arg(0), who)
		case d.RevokeError != "":
			fmt.Fprintf(stdout, "connection of token %s for %s deleted; revoking it at the provider failed: %s\n", a.fs.Arg(0), who, d.RevokeError)
		default:
			fmt.Fprintf(stdout, "connection of token %s for %s deleted (the token has no revoke_url)\n", a.fs.Arg(0), who)
		}
		return nil
	}
	var l admin.ConnectionList
	_ = json.Unmarshal(reply, &l)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "END USER\tSTATUS\tSINCE\tACCESS TOKEN\tEXPIRES\tLAST ERROR")
	for _, c := range l.Connections {
		user, access, expires := c.EndUserID, "-", "-"
		if user == "" {
			user = "(workspace)"
		}
		if c.Fetched != nil {
			access = c.Fetched.TokenPreview
			if c.Fetched.ExpiresAt != "" {
				expires = c.Fetched.ExpiresAt
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", user, c.Status, c.StatusChangedAt, access, expires, c.LastError)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case len(l.Connections) == 0:
		fmt.Fprintf(stdout, "token %s has no connections\n", a.fs.Arg(0))
	case l.More:
		fmt.Fprintf(stdout, "showing the first %d; use -user to find one, -limit for more\n", len(l.Connections))
	}
	return nil
}

// runTriggers re-runs a logged trigger as a test run, from the copies the
// service keeps with ACTIONS_KEEP_TRIGGERS.
func runTriggers(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	a, err := parseAdminCommand("triggers", "usage: consumer triggers rerun ACTION_ID TRIGGER_ID   [-o json]", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	if a.verb != "rerun" {
		return fmt.Errorf("triggers: unknown command %q (rerun)", a.verb)
	}
	if err := a.args(2, "an action id and a trigger id"); err != nil {
		return err
	}
	reply, done, err := a.request(ctx, map[string]string{"action_id": a.fs.Arg(0), "trigger_id": a.fs.Arg(1)}, stdout, stderr)
	if done {
		return err
	}
	var r admin.Rerun
	_ = json.Unmarshal(reply, &r)
	fmt.Fprintf(stdout, "trigger %s of %s published again as test run %s (consumer logs %s shows its result)\n", a.fs.Arg(1), r.ActionID, r.ID, r.ActionID)
	return nil
}
