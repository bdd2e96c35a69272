package consumer

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/auth"
	"customactions/events"
	"customactions/internal/natstest"
)

// TestBadPeers: the action API and the auth endpoint hang, reset
// connections or answer garbage; triggers fail with the right codes and the
// consumer stays healthy.
func TestBadPeers(t *testing.T) {
	h := newHarness(t, Config{Workers: 8})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(hang.Close)
	reset := rawServer(t, func(c net.Conn) {
		_ = c.(*net.TCPConn).SetLinger(0) // RST instead of FIN
		_ = c.Close()
	})
	garbage := rawServer(t, func(c net.Conn) {
		_, _ = bufio.NewReader(c).ReadString('\n')
		_, _ = c.Write([]byte("SPEAKING SOMETHING ELSE\r\n\r\n"))
		_ = c.Close()
	})
	ok := newAPI(t, func(w http.ResponseWriter, r *http.Request) {})
	for _, tc := range []struct{ id, url string }{{"hang", hang.URL}, {"reset", reset}, {"garbage", garbage}} {
		h.putToken(auth.Token{ID: "auth-" + tc.id, Type: "http", TokenPath: "access_token",
			Request: &auth.AuthRequest{Method: "POST", URL: tc.url + "/token"}})
	}
	h.start()
	tests := []struct {
		id, url, token string
		timeoutMS      int64
		wantCode       string
	}{
		{"api-hang", hang.URL, "", 300, events.CodeTimeout},
		{"api-reset", reset, "", 0, events.CodeNetworkError},
		{"api-garbage", garbage, "", 0, events.CodeNetworkError},
		{"auth-hang", ok.URL, "auth-hang", 0, events.CodeTokenRefreshFailed},
		{"auth-reset", ok.URL, "auth-reset", 0, events.CodeTokenRefreshFailed},
		{"auth-garbage", ok.URL, "auth-garbage", 0, events.CodeTokenRefreshFailed},
	}
	for _, tc := range tests {
		h.trigger(&events.Trigger{ID: tc.id, ActionID: "a", Source: "inbox", TokenID: tc.token,
			Request: events.Request{Method: "GET", URL: tc.url, TimeoutMS: tc.timeoutMS}})
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			r := h.result(tc.id, 40*time.Second)
			if r.Status != events.StatusFailed || r.Error == nil || r.Error.Code != tc.wantCode {
				t.Errorf("result %+v %+v, want failed/%s", r, r.Error, tc.wantCode)
			}
		})
	}
	h.trigger(&events.Trigger{ID: "healthy", ActionID: "a", Source: "inbox", Request: events.Request{Method: "GET", URL: ok.URL}})
	if r := h.result("healthy", 10*time.Second); r.Status != events.StatusSucceeded {
		t.Errorf("after the bad peers: %+v", r)
	}
	waitDrained(t, h)
}

// rawServer accepts TCP connections and hands them to serve.
func rawServer(t *testing.T, serve func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return "http://" + ln.Addr().String()
}

// loadRun publishes n triggers (retrying publishes through outages) to an
// API that counts calls per Idempotency-Key, and checks that every trigger
// ends with exactly one stored result.
type loadRun struct {
	t      *testing.T
	api    *httptest.Server
	mu     sync.Mutex
	perKey map[string]int
	// actions spreads the triggers over that many actions (act-0 ...), so
	// that every trigger partition gets some; 0 puts all on "load".
	actions int
}

func newLoadRun(t *testing.T, latency time.Duration) *loadRun {
	l := &loadRun{t: t, perKey: map[string]int{}}
	l.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.perKey[r.Header.Get("Idempotency-Key")]++
		l.mu.Unlock()
		time.Sleep(latency)
	}))
	t.Cleanup(l.api.Close)
	return l
}

func (l *loadRun) trigger(i int) *nats.Msg {
	action := "load"
	if l.actions > 0 {
		action = "act-" + strconv.Itoa(i%l.actions)
	}
	tr := &events.Trigger{ID: "L" + strconv.Itoa(i), ActionID: action, Source: "inbox", Request: events.Request{Method: "POST", URL: l.api.URL}}
	data, _ := json.Marshal(tr)
	msg := &nats.Msg{Subject: "actions.trigger.inbox." + action, Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, tr.ID)
	return msg
}

// publishAll publishes triggers from..to-1, retrying each until it is
// stored (the server may be down for a while), and returns how many the
// stream reported as duplicates.
func (l *loadRun) publishAll(js jetstream.JetStream, from, to int) (duplicates int) {
	for i := from; i < to; i++ {
		msg := l.trigger(i)
		deadline := time.Now().Add(60 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			ack, err := js.PublishMsg(ctx, msg)
			cancel()
			if err == nil {
				if ack.Duplicate {
					duplicates++
				}
				break
			}
			if time.Now().After(deadline) {
				l.t.Errorf("publish %d: %v", i, err)
				return duplicates
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return duplicates
}

// check waits for n results and asserts one per trigger, each succeeded
// and each trigger at the API; it returns how many reached it more than
// once.
func (l *loadRun) check(js jetstream.JetStream, n int, timeout time.Duration) (twice int) {
	l.t.Helper()
	var results []events.Result
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		got, err := natstest.ReadAll[events.Result](js, events.DefaultResultStream, "actions.result.>")
		if err == nil {
			results = got
			if len(results) >= n {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	seen := map[string]int{}
	for _, r := range results {
		seen[r.TriggerID]++
		if r.Status != events.StatusSucceeded {
			l.t.Errorf("trigger %s: %s %v", r.TriggerID, r.Status, r.Error)
		}
	}
	missing, dup := 0, 0
	for i := range n {
		switch seen["L"+strconv.Itoa(i)] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	if missing > 0 || dup > 0 || len(results) != n {
		l.t.Errorf("%d results for %d triggers: %d missing, %d with more than one result", len(results), n, missing, dup)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	never := 0
	for i := range n {
		switch c := l.perKey["L"+strconv.Itoa(i)]; {
		case c == 0:
			never++
		case c > 1:
			twice++
		}
	}
	if never > 0 {
		l.t.Errorf("%d of %d triggers never reached the API", never, n)
	}
	return twice
}

// TestServerRestartUnderLoad: the embedded server is restarted on the same
// store while triggers flow; the consumer reconnects and nothing is lost.
func TestServerRestartUnderLoad(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	srv := natstest.StartAt(t, dir, port)
	cfg := Config{Workers: 16, AckWait: 5 * time.Second}
	h := newHarnessOn(t, srv, cfg)
	l := newLoadRun(t, 5*time.Millisecond)
	h.start()
	pubNC, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pubNC.Close)
	pubJS, _ := jetstream.New(pubNC)
	const n = 600
	l.publishAll(pubJS, 0, 300)
	srv.Shutdown()
	srv.WaitForShutdown()
	time.Sleep(500 * time.Millisecond)
	srv2 := natstest.StartAt(t, dir, port)
	_ = srv2
	l.publishAll(pubJS, 300, n)
	twice := l.check(pubJS, n, 90*time.Second)
	t.Logf("server restarted under load: %d triggers, each with one result; %d action calls made twice (redelivered after the restart)", n, twice)
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestClusterNodeLossUnderLoad: a 3-node JetStream cluster with R3 streams
// and buckets; one node stops under load and nothing is lost.
func TestClusterNodeLossUnderLoad(t *testing.T) {
	nodes := natstest.StartCluster(t, 3)
	urls := natstest.ClusterURLs(nodes)
	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}
	// The consumer connects to node 0; node 2 is the one that stops.
	nc, js := natstest.ConnectURL(t, urls, opts...)
	cfg := Config{Replicas: 3, Workers: 16, AckWait: 5 * time.Second}.WithDefaults()
	res := setupRetry(t, js, cfg)
	h := &harness{t: t, srv: &natstest.Server{Server: nodes[0]}, nc: nc, js: js, res: res, cfg: cfg, subj: events.NewSubjects(""), logs: &syncBuffer{}}
	h.start()
	l := newLoadRun(t, 2*time.Millisecond)
	const n = 600
	l.publishAll(js, 0, 250)
	nodes[2].Shutdown()
	nodes[2].WaitForShutdown()
	l.publishAll(js, 250, n)
	twice := l.check(js, n, 90*time.Second)
	t.Logf("3-node cluster, one node stopped under load: %d triggers, each with one result; %d action calls made twice", n, twice)
}
