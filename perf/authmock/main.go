// Command authmock is the auth endpoint of the HTTP-token load run: every
// POST /token answers the bench token with a short lifetime, so the token
// rotates every few seconds under load; GET /stats counts the requests.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"sync/atomic"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "listen address (loopback)")
	lifetime := flag.Int("expires-in", 3, "token lifetime in seconds")
	token := flag.String("token", "bench-secret", "the token handed out (the perf mock API accepts bench-secret)")
	flag.Parse()
	var n atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"expires_in":%d}`, *token, *lifetime)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"auth_requests":%d}`+"\n", n.Load())
	})
	log.Printf("authmock on http://%s (expires_in=%ds)", *addr, *lifetime)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
