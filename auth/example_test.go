package auth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/auth"
)

// The caller of Authenticator.Do hands over the call and the token id: the
// Authenticator signs each attempt and, for an HTTP Request token,
// refreshes the token once when the action answers 401. The caller never
// sees the kind of token or its value.
func ExampleAuthenticator_Do() {
	dir, _ := os.MkdirTemp("", "auth-example")
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
	tokens, _ := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "action_tokens"})
	fetched, _ := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "action_fetched_tokens"})

	// The customer's auth endpoint hands out a new token per request; the
	// API takes only the newest.
	var issued int
	current := ""
	authSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		issued++
		current = fmt.Sprintf("tok-%d", issued)
		fmt.Fprintf(w, `{"access_token":%q}`, current)
	}))
	defer authSrv.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+current {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer api.Close()

	store := auth.NewStore(tokens, nil)
	tok := &auth.Token{ID: "shop", Type: auth.TypeHTTP, Prefix: "Bearer ", TokenPath: "access_token",
		Request: &auth.AuthRequest{Method: "POST", URL: authSrv.URL, Params: map[string]auth.Secret{"client_secret": "s3cr3t"}}}
	tok.Normalize()
	_, _ = store.Put(ctx, tok)
	a := auth.NewAuthenticator(store, auth.NewManager(fetched, auth.NewFetcher()))

	call := func(ctx context.Context, cred auth.Credential) int {
		req, _ := http.NewRequestWithContext(ctx, "POST", api.URL+"/orders", nil)
		cred.Sign(req.Header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		fmt.Println("  API answered", resp.StatusCode)
		return resp.StatusCode
	}
	out, err := a.Do(ctx, auth.Ref{TokenID: "shop"}, call)
	fmt.Println("first call:", out.Attempts, "attempt, fetched", out.Fetched.Preview, err)

	current = "rotated by the provider"
	out, err = a.Do(ctx, auth.Ref{TokenID: "shop"}, call)
	fmt.Println("after a rotation:", out.Attempts, "attempts, retried", out.Retried, err)
	// Output:
	//   API answered 200
	// first call: 1 attempt, fetched **** <nil>
	//   API answered 401
	//   API answered 200
	// after a rotation: 2 attempts, retried true <nil>
}
