package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/breaker"
)

// Two failures in a row open the breaker of an action; a further call is
// refused with ErrOpen until the cool-down ends. Every replica that
// watches the same bucket sees the same state.
func Example() {
	dir, _ := os.MkdirTemp("", "breaker-example")
	defer os.RemoveAll(dir)
	ns, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	ns.Start()
	defer ns.Shutdown()
	ns.ReadyForConnections(5 * time.Second)
	nc, _ := nats.Connect(ns.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, _ := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "action_breakers"})

	br, _ := breaker.New(kv, breaker.Settings{Consecutive: 2, Cooldown: time.Minute},
		breaker.OnTransition(func(tr breaker.Transition) { fmt.Printf("%s: %s -> %s (%s)\n", tr.ActionID, tr.From, tr.To, tr.Reason) }))
	_ = br.Watch(ctx)

	for range 2 {
		done, _ := br.Allow(ctx, "create-order")
		done(breaker.Failure) // the action answered 500
	}
	br.Flush()
	_, err := br.Allow(ctx, "create-order")
	fmt.Println(errors.Is(err, breaker.ErrOpen), br.Get("create-order").State)
	// Output:
	// create-order: closed -> open (2 consecutive failures)
	// true open
}
