package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"customactions/breaker"
	"customactions/consumer"
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
		if a.err != nil {
			return nil, fmt.Errorf("%s: no answer (is the service running?): %w", verb, a.err)
		}
		msg = a.msg
	case err := <-c.errs:
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

func runTokens(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: consumer tokens test|save -f FILE | get ID | list | delete ID   [-o json]")
		return exitCode(2)
	}
	verb := args[0]
	fs := flag.NewFlagSet("tokens "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "token JSON file (- for stdin)")
	output := fs.String("o", "text", "output: text or json")
	if err := fs.Parse(reorderFlags(args[1:])); err != nil {
		return exitCode(2)
	}
	s, err := loadSettings()
	if err != nil {
		return err
	}
	var body any = map[string]string{}
	switch verb {
	case "test", "save":
		if *file == "" {
			return fmt.Errorf("tokens %s: -f FILE is required", verb)
		}
		data, err := readFileArg(*file)
		if err != nil {
			return err
		}
		body = data
	case "get", "delete":
		if fs.NArg() != 1 {
			return fmt.Errorf("tokens %s: give one token id", verb)
		}
		body = map[string]string{"id": fs.Arg(0)}
	case "list":
	default:
		return fmt.Errorf("tokens: unknown command %q (test, save, get, list, delete)", verb)
	}
	reply, err := adminRequest(ctx, s, "tokens."+verb, body)
	if err != nil {
		if *output == "json" && reply != nil {
			printJSON(stdout, reply)
		}
		fmt.Fprintln(stderr, "consumer tokens "+verb+":", err)
		return exitCode(1)
	}
	if *output == "json" {
		printJSON(stdout, reply)
		return nil
	}
	switch verb {
	case "list":
		var r struct {
			Tokens []consumer.TokenView `json:"tokens"`
		}
		_ = json.Unmarshal(reply, &r)
		printTokenTable(stdout, r.Tokens)
	case "test":
		var r consumer.TestReply
		_ = json.Unmarshal(reply, &r)
		printTest(stdout, &r)
		if !r.OK {
			return exitCode(1)
		}
	case "delete":
		fmt.Fprintf(stdout, "token %s deleted\n", fs.Arg(0))
	default:
		printJSON(stdout, reply)
	}
	return nil
}

func printTokenTable(w io.Writer, tokens []consumer.TokenView) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTYPE\tHEADER\tSECRET\tLAST FETCHED\tEXPIRES\tDESCRIPTION")
	for _, t := range tokens {
		secret, fetched, expires := "", "-", "-"
		if t.Token.Type == "text" {
			secret = string(t.Token.Value)
		} else if t.Fetched != nil {
			secret, fetched, expires = t.Fetched.TokenPreview, t.Fetched.FetchedAt, t.Fetched.ExpiresAt
			if expires == "" {
				expires = "-"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Type, t.Header, secret, fetched, expires, t.Description)
	}
	_ = tw.Flush()
}

func printTest(w io.Writer, r *consumer.TestReply) {
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

func runBreakers(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: consumer breakers list | reset ACTION_ID   [-o json]")
		return exitCode(2)
	}
	verb := args[0]
	fs := flag.NewFlagSet("breakers "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("o", "text", "output: text or json")
	if err := fs.Parse(reorderFlags(args[1:])); err != nil {
		return exitCode(2)
	}
	s, err := loadSettings()
	if err != nil {
		return err
	}
	var body any = map[string]string{}
	switch verb {
	case "list":
	case "reset":
		if fs.NArg() != 1 {
			return fmt.Errorf("breakers reset: give one action id")
		}
		body = map[string]string{"action_id": fs.Arg(0)}
	default:
		return fmt.Errorf("breakers: unknown command %q (list, reset)", verb)
	}
	reply, err := adminRequest(ctx, s, "breakers."+verb, body)
	if err != nil {
		fmt.Fprintln(stderr, "consumer breakers "+verb+":", err)
		return exitCode(1)
	}
	if *output == "json" {
		printJSON(stdout, reply)
		return nil
	}
	if verb == "reset" {
		fmt.Fprintf(stdout, "breaker of %s closed\n", fs.Arg(0))
		return nil
	}
	var r struct {
		Breakers []breaker.State `json:"breakers"`
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
