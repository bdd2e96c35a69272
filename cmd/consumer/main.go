// Command consumer is the Custom Actions engine: run with no arguments (or
// "run") it executes triggers; its other subcommands are the tools people
// use with it (demo, trigger, logs, tokens, breakers).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			os.Exit(int(ec))
		}
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

// exitCode ends the program with a code after the command printed its own
// message.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

const usage = `consumer: the Custom Actions engine

  consumer [run]                 run the service (embedded NATS when NATS_URL is empty)
  consumer demo                  run the service on an embedded server with a local API and show it working
  consumer trigger [flags]       publish a trigger and print its result
  consumer logs [-f] [-o text|json] [ACTION_ID]   print log events, -f to follow
  consumer tokens test|save -f FILE | get ID | list | delete ID   manage tokens (save -f of an array saves each)
  consumer tokens forget ID | usage ID   drop an HTTP token's fetched token; its newest uses in the logs
  consumer tokens connect ID     a link that connects a workspace-wide authorization_code token in a browser
  consumer connections list TOKEN_ID [-user ID] | delete TOKEN_ID [END_USER_ID]
                                 end users' connections of a per_end_user token (delete revokes them)
  consumer breakers list | reset ACTION_ID                         see and reset circuit breakers
  consumer limits set ACTION_ID -rate N -burst N -max-concurrent N | get ACTION_ID | list | delete ACTION_ID
                                 an action's fleet-wide limits
  consumer dead list | replay SEQ... | replay all                 dead-lettered triggers
  consumer triggers rerun ACTION_ID TRIGGER_ID   re-run a logged trigger as a test (ACTIONS_KEEP_TRIGGERS)
  consumer settings              print the settings: value (secrets masked), default, type, meaning

Settings come from environment variables; see the README.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runService(ctx, args, getenv, stdout, stderr)
	case "demo":
		return runDemo(ctx, args, getenv, stdout, stderr)
	case "trigger":
		return runTrigger(ctx, args, getenv, stdout, stderr)
	case "logs":
		return runLogs(ctx, args, getenv, stdout, stderr)
	case "tokens":
		return runTokens(ctx, args, getenv, stdout, stderr)
	case "breakers":
		return runBreakers(ctx, args, getenv, stdout, stderr)
	case "limits":
		return runLimits(ctx, args, getenv, stdout, stderr)
	case "connections":
		return runConnections(ctx, args, getenv, stdout, stderr)
	case "triggers":
		return runTriggers(ctx, args, getenv, stdout, stderr)
	case "dead":
		return runDead(ctx, args, getenv, stdout, stderr)
	case "settings":
		return runSettings(args, getenv, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
