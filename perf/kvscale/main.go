// Command kvscale measures what the size of the KV buckets costs a
// replica: it fills the buckets with N end users' connections of a
// per_end_user token (and, with -tokens, N text tokens), then starts the
// real consumer binary as a child process against the same nats-server and
// reports the time from exec to /readyz answering 200, the child's RSS
// then, the latency of its first trigger, and its RSS after triggers for
// -users distinct end users. Run it with and without records to see what
// the records cost:
//
//	go build -o /tmp/consumer ./cmd/consumer
//	go run ./perf/kvscale -bin /tmp/consumer -connections 0
//	go run ./perf/kvscale -bin /tmp/consumer -connections 100000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/auth"
	"customactions/consumer"
	"customactions/events"
	"customactions/internal/perfrig"
)

func main() {
	bin := flag.String("bin", "/tmp/consumer", "the consumer binary (go build -o /tmp/consumer ./cmd/consumer)")
	conns := flag.Int("connections", 100000, "end users' connections stored before the replica starts")
	tokens := flag.Int("tokens", 0, "extra text tokens stored before the replica starts")
	fetched := flag.Int("fetched", 0, "HTTP tokens, each with a fetched token, stored before the replica starts")
	breakers := flag.Int("breakers", 0, "closed breakers with failures counted, stored before the replica starts")
	users := flag.Int("users", 20000, "triggers after start-up, for end users user0, user1 ... (cycling over -connections)")
	distinct := flag.Int("distinct", 0, "end users the triggers cycle over (0: -connections)")
	heap := flag.String("heap", "", "write the replica's heap profile after the triggers to this file")
	flag.Parse()

	ns, stop := perfrig.Server(0)
	defer stop()
	nc, js := perfrig.Connect(ns.ClientURL())
	defer nc.Close()
	ctx := context.Background()
	cfg := consumer.Config{}.WithDefaults()
	res, err := consumer.Setup(ctx, js, cfg)
	if err != nil {
		log.Fatal(err)
	}

	var calls atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer at-") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer api.Close()

	tok := &auth.Token{ID: "crm", Name: "CRM as the contact", Type: auth.TypeOAuth2, Prefix: "Bearer ", Header: "Authorization",
		OAuth2: &auth.OAuth2{Grant: auth.GrantAuthorizationCode, PerEndUser: true, AuthorizeURL: api.URL + "/authorize",
			TokenURL: api.URL + "/token", ClientID: "client", ClientSecret: "secret"}}
	tok.Normalize()
	if err := tok.Validate(); err != nil {
		log.Fatal(err)
	}
	store := auth.NewStore(res.Tokens, nil)
	if _, err := store.Put(ctx, tok); err != nil {
		log.Fatal(err)
	}
	start := time.Now()
	fill(js, cfg.Prefix, *conns, func(i int) (string, []byte) {
		// Tokens as long as real ones (43 characters, as a 32-byte
		// base64url value): their Redactors cost what real ones do.
		rec, _ := json.Marshal(map[string]any{"access_token": fmt.Sprintf("at-%040d", i), "refresh_token": fmt.Sprintf("rt-%040d", i),
			"gen": 1, "fetched_at_ms": time.Now().UnixMilli(), "config_hash": tok.ConfigHash(), "status": "ok", "status_changed_at_ms": time.Now().UnixMilli()})
		return fmt.Sprintf("crm.user%d", i), rec
	}, consumer.ConnectionNames(cfg.Prefix).Bucket)
	for i := range *tokens {
		t := &auth.Token{ID: fmt.Sprintf("text-%d", i), Name: "filler", Type: auth.TypeText, Value: auth.Secret("v-" + strconv.Itoa(i)), Prefix: "Bearer ", Header: "Authorization"}
		t.Normalize()
		if _, err := store.Put(ctx, t); err != nil {
			log.Fatal(err)
		}
	}
	for i := range *fetched {
		t := &auth.Token{ID: fmt.Sprintf("http-%d", i), Name: "filler", Type: auth.TypeHTTP, Prefix: "Bearer ", Header: "Authorization",
			TokenPath: "access_token", Request: &auth.AuthRequest{Method: "POST", URL: api.URL + "/token",
				Params: map[string]auth.Secret{"client_id": "c", "client_secret": auth.Secret(fmt.Sprintf("secret-%020d", i))}}}
		t.Normalize()
		if _, err := store.Put(ctx, t); err != nil {
			log.Fatal(err)
		}
		hash := t.ConfigHash()
		fill(js, cfg.Prefix, 1, func(int) (string, []byte) {
			rec, _ := json.Marshal(map[string]any{"token": fmt.Sprintf("fetched-%040d", i), "fetched_at_ms": time.Now().UnixMilli(),
				"config_hash": hash, "fetched_by": "kvscale"})
			return "token." + t.ID, rec
		}, cfg.FetchedBucket)
	}
	fill(js, cfg.Prefix, *breakers, func(i int) (string, []byte) {
		rec, _ := json.Marshal(map[string]any{"action_id": fmt.Sprintf("action-%d", i), "state": "closed", "generation": 1,
			"buckets":              []map[string]any{{"start_ms": time.Now().Add(-time.Hour).UnixMilli(), "f": 1, "s": 3}},
			"consecutive_failures": 0, "updated_at": time.Now().UTC().Format(time.RFC3339Nano)})
		return fmt.Sprintf("action-%d", i), rec
	}, cfg.BreakerBucket)
	fmt.Printf("filled %d connections, %d text tokens, %d HTTP tokens with fetched tokens and %d breakers in %s\n",
		*conns, *tokens, *fetched, *breakers, time.Since(start).Round(time.Millisecond))

	addr := freeAddr()
	cmd := exec.Command(*bin, "run")
	cmd.Env = append(os.Environ(), "NATS_URL="+ns.ClientURL(), "ACTIONS_HTTP_ADDR="+addr, "ACTIONS_PUBLIC_URL=http://"+addr,
		"ACTIONS_ALLOW_PRIVATE_NETWORKS=true", "ACTIONS_LOG_LEVEL=warn", "ACTIONS_PPROF=true")
	cmd.Stderr = os.Stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(t0) > 2*time.Minute {
			log.Fatal("the replica did not get ready in 2 min")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ready := time.Since(t0)
	rssReady, _ := rss(cmd.Process.Pid)

	results := make(chan *nats.Msg, 4096)
	sub, err := nc.ChanSubscribe(events.NewSubjects(cfg.Prefix).Result("orders"), results)
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Unsubscribe()
	publish := func(id string, user int) {
		t := events.Trigger{ID: id, ActionID: "orders", Source: "bot", TokenID: "crm", EndUser: &events.EndUser{ID: fmt.Sprintf("user%d", user)},
			Request: events.Request{Method: "GET", URL: api.URL}}
		data, _ := json.Marshal(t)
		m := &nats.Msg{Subject: events.NewSubjects(cfg.Prefix).Trigger("bot", "orders"), Data: data, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, id)
		if _, err := js.PublishMsgAsync(m); err != nil {
			log.Fatal(err)
		}
	}
	wait := func(n int) (statuses map[string]int) {
		statuses = map[string]int{}
		deadline := time.After(5 * time.Minute)
		for got := 0; got < n; got++ {
			select {
			case m := <-results:
				var r events.Result
				_ = json.Unmarshal(m.Data, &r)
				statuses[r.Status]++
			case <-deadline:
				log.Fatalf("%d of %d results in 5 min", got, n)
			}
		}
		return statuses
	}
	t1 := time.Now()
	publish("first", 0)
	first := wait(1)
	firstLatency := time.Since(t1)

	n := *users
	cycle := max(*conns, 1)
	if *distinct > 0 {
		cycle = *distinct
	}
	t2 := time.Now()
	for i := range n {
		publish(fmt.Sprintf("t-%d", i), i%cycle)
	}
	statuses := wait(n)
	drive := time.Since(t2)
	rssAfter, hwm := rss(cmd.Process.Pid)
	if *heap != "" {
		resp, err := http.Get("http://" + addr + "/debug/pprof/heap")
		if err != nil {
			log.Fatal(err)
		}
		f, _ := os.Create(*heap)
		_, _ = io.Copy(f, resp.Body)
		f.Close()
		resp.Body.Close()
	}
	fmt.Printf("connections=%d tokens=%d fetched=%d breakers=%d: ready in %s, RSS at ready %.1f MB; first trigger %s (%v); %d triggers over %d end users in %s (%.0f/s, %v); RSS after %.1f MB, peak %.1f MB\n",
		*conns, *tokens, *fetched, *breakers, ready.Round(time.Millisecond), rssReady, firstLatency.Round(100*time.Microsecond), first,
		n, min(n, cycle), drive.Round(time.Millisecond), float64(n)/drive.Seconds(), statuses, rssAfter, hwm)
}

// fill writes n records into bucket with asynchronous publishes (as
// KV puts are, on the bucket's subjects).
func fill(js jetstream.JetStream, prefix string, n int, rec func(i int) (string, []byte), bucket string) {
	_ = prefix
	for i := range n {
		key, data := rec(i)
		if _, err := js.PublishAsync("$KV."+bucket+"."+key, data); err != nil {
			log.Fatal(err)
		}
		if i%5000 == 4999 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()
}

// rss returns the current and peak resident set size of pid, in MB.
func rss(pid int) (cur, peak float64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			cur = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return cur, peak
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
