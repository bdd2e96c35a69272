// Command capacity measures the consumer at realistic API latency and many
// calls in flight (CAPACITY.md). It has two parts, run as separate
// processes by perf/capacity.sh beside the shared load harness's
// nats-server and the consumer under test:
//
//	capacity mockapi -addr 127.0.0.1:18080 [-tls CERT.pem [-http1]] [-close-every N]
//	capacity drive -nats URL -api http://127.0.0.1:18080 -rate 4000 -duration 20s -dist tail
//
// The drive chooses each trigger's API latency from a distribution and puts
// it in the trigger's request (header X-Mock-Latency-Ms, which the mock API
// sleeps) and in its context (api_ms), so the latency the pipeline adds to
// a trigger is exact: result receipt - publish - api_ms. It publishes at a
// fixed rate (open loop: a slow pipeline does not slow the offer) and
// prints one line of throughput, added latency and calls in flight.
// Everything is on loopback.
//
// With -tls the mock API serves HTTPS with a certificate it makes for
// 127.0.0.1 and writes to CERT.pem (the consumer trusts it through
// SSL_CERT_FILE), and speaks HTTP/2 as most public APIs do, with Go's
// default of 250 concurrent streams per connection; -http1 keeps it to
// HTTP/1.1 over TLS. -close-every N closes an HTTP/1.1 connection after
// every Nth answer (Connection: close), as servers that limit the requests
// of a keep-alive connection do.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/perfrig"
)

const benchSecret = "bench-secret" // the shared harness's bearer, as perf/bench-token.json

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: capacity mockapi|drive [flags]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "mockapi":
		err = runMock(ctx, os.Args[2:])
	case "drive":
		err = runDrive(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		log.Fatal(err)
	}
}

// runMock serves the API: 200 after the latency the request's
// X-Mock-Latency-Ms asks for, with the bearer checked; GET /stats counts.
func runMock(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("mockapi", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:18080", "listen address (loopback)")
	certOut := fs.String("tls", "", "serve HTTPS and write the certificate (PEM) to this file")
	http1 := fs.Bool("http1", false, "with -tls: HTTP/1.1 only (no HTTP/2)")
	closeEvery := fs.Int64("close-every", 0, "close the connection after every Nth answer (0: never)")
	_ = fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	var requests, ok, conns, open, h2 atomic.Int64
	var peakOpen atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/stats" {
			fmt.Fprintf(w, `{"requests":%d,"ok":%d,"http2":%d,"conns":%d,"peak_open_conns":%d}`,
				requests.Load(), ok.Load(), h2.Load(), conns.Load(), peakOpen.Load())
			return
		}
		n := requests.Add(1)
		if r.ProtoMajor == 2 {
			h2.Add(1)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Header.Get("Authorization") != "Bearer "+benchSecret {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		if ms, _ := strconv.Atoi(r.Header.Get("X-Mock-Latency-Ms")); ms > 0 {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		if o := ok.Add(1); *closeEvery > 0 && o%*closeEvery == 0 {
			w.Header().Set("Connection", "close")
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":true,"n":%d}`, n)
	})
	srv := &http.Server{Handler: h, ConnState: func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			conns.Add(1)
			if o := open.Add(1); o > peakOpen.Load() {
				peakOpen.Store(o)
			}
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if *certOut == "" {
		fmt.Printf("http://%s\n", ln.Addr())
		err = srv.Serve(ln)
	} else {
		var cert tls.Certificate
		if cert, err = selfSigned(*certOut); err != nil {
			return err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		if *http1 {
			srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		}
		fmt.Printf("https://%s\n", ln.Addr())
		err = srv.ServeTLS(ln, "", "")
	}
	if err != http.ErrServerClosed {
		return err
	}
	return nil
}

// selfSigned makes a certificate for 127.0.0.1 and writes it (not its key)
// to certOut as PEM.
func selfSigned(certOut string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "capacity mock API"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(certOut, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// latencyDist draws an API latency in ms.
type latencyDist func(r *rand.Rand) int

func distribution(name string) (latencyDist, error) {
	switch {
	case name == "tail":
		// 200 ms median with a long tail: 95 % uniform in 150-250 ms,
		// 5 % uniform in 1-2 s (mean 265 ms).
		return func(r *rand.Rand) int {
			if r.Float64() < 0.05 {
				return 1000 + r.IntN(1001)
			}
			return 150 + r.IntN(101)
		}, nil
	case strings.HasPrefix(name, "flat"):
		ms, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "flat"), "ms"))
		if err != nil {
			return nil, fmt.Errorf("-dist %s: want tail or flatNms", name)
		}
		return func(*rand.Rand) int { return ms }, nil
	}
	return nil, fmt.Errorf("-dist %s: want tail or flatNms", name)
}

// runDrive publishes -rate triggers/s for -duration (or -n at full speed
// with -rate 0) and waits for their results.
func runDrive(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("drive", flag.ExitOnError)
	url := fs.String("nats", nats.DefaultURL, "NATS URL")
	api := fs.String("api", "http://127.0.0.1:18080", "mock API URL")
	rate := fs.Int("rate", 1000, "triggers per second (0: -n at once)")
	dur := fs.Duration("duration", 20*time.Second, "how long to publish at -rate")
	n := fs.Int("n", 20000, "triggers with -rate 0")
	distName := fs.String("dist", "tail", "API latency: tail (200 ms median, 5 % at 1-2 s) or flatNms")
	warm := fs.Duration("warmup", 3*time.Second, "results of triggers published before this are left out of the steady-state figures")
	timeout := fs.Duration("timeout", 30*time.Second, "wait for the last results after the last publish")
	waitConsumer := fs.Duration("wait-consumer", 60*time.Second, "wait for the durable consumer of the pipeline")
	stream := fs.String("stream", "ACTIONS_TRIGGERS", "trigger stream, whose consumer shows the pipeline is up")
	seed := fs.Uint64("seed", 1, "random seed of the latencies")
	_ = fs.Parse(args)
	dist, err := distribution(*distName)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(*url, nats.Name("capacity-drive"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1<<16))
	if err != nil {
		return err
	}
	if err := waitForConsumer(ctx, js, *stream, *waitConsumer); err != nil {
		return err
	}
	total := *n
	if *rate > 0 {
		total = int(float64(*rate) * dur.Seconds())
	}
	type obs struct{ added, api, e2e float64 } // ms
	var (
		mu       sync.Mutex
		got      = make(map[string]struct{}, total)
		all      = make([]obs, 0, total)
		steady   = make([]obs, 0, total)
		notOK    int
		codes    = map[string]int{}
		dups     int
		first    time.Time
		last     time.Time
		complete = make(chan struct{})
	)
	var published atomic.Int64
	var received atomic.Int64
	warmNS := atomic.Int64{}
	sub, err := nc.Subscribe("actions.result.>", func(m *nats.Msg) {
		now := time.Now()
		var r perfrig.Result
		if json.Unmarshal(m.Data, &r) != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if _, seen := got[r.TriggerID]; seen {
			dups++
			return
		}
		got[r.TriggerID] = struct{}{}
		if r.Status != "succeeded" {
			notOK++
			code := r.Status
			if r.Error != nil {
				code = r.Error.Code
			}
			codes[code]++
		}
		e2e := float64(now.UnixNano()-r.Context.SentNS) / 1e6
		o := obs{added: e2e - float64(r.Context.APIMS), api: float64(r.Context.APIMS), e2e: e2e}
		all = append(all, o)
		if r.Context.SentNS >= warmNS.Load() {
			steady = append(steady, o)
		}
		last = now
		if received.Add(1) == int64(total) {
			close(complete)
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	sub.SetPendingLimits(-1, -1)

	// Calls in flight by Little's law are rate x latency; sampled here as
	// published - received (triggers in the stream, held by the consumer or
	// calling), once every 100 ms.
	var samples []int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				samples = append(samples, published.Load()-received.Load())
			}
		}
	}()

	rng := rand.New(rand.NewPCG(*seed, 2))
	prefix := strconv.FormatInt(time.Now().UnixNano(), 36)
	subject := "actions.trigger.inbox.bench-action"
	publish := func(i int) error {
		ms := dist(rng)
		sent := time.Now().UnixNano()
		t := perfrig.Trigger{ID: prefix + "-" + strconv.Itoa(i), ActionID: "bench-action", Mode: "live", Source: "inbox", TokenID: "bench-text",
			Request: perfrig.Request{Method: "POST", URL: *api + "/v1/echo", Headers: map[string]string{"Content-Type": "application/json",
				"X-Mock-Latency-Ms": strconv.Itoa(ms)}, Body: `{"n":123}`},
			Context: json.RawMessage(`{"sent_ns":` + strconv.FormatInt(sent, 10) + `,"api_ms":` + strconv.Itoa(ms) + `}`)}
		data, _ := json.Marshal(t)
		msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, t.ID)
		_, err := js.PublishMsgAsync(msg)
		published.Add(1)
		return err
	}
	first = time.Now()
	warmNS.Store(first.Add(*warm).UnixNano())
	pubErrors := 0
	if *rate <= 0 {
		for i := range total {
			if publish(i) != nil {
				pubErrors++
			}
		}
	} else {
		// Paced in 1 ms steps: the i-th trigger goes at first + i/rate.
		for i := 0; i < total; {
			due := int(float64(time.Since(first)) / float64(time.Second) * float64(*rate))
			for ; i < min(due, total); i++ {
				if publish(i) != nil {
					pubErrors++
				}
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
	}
	pubDone := time.Since(first)
	select {
	case <-complete:
	case <-time.After(*timeout):
	case <-ctx.Done():
	}
	close(stopSampling)
	<-sampled
	mu.Lock()
	defer mu.Unlock()
	elapsed := last.Sub(first)
	pct := func(xs []obs, f func(obs) float64, p float64) float64 {
		if len(xs) == 0 {
			return math.NaN()
		}
		v := make([]float64, len(xs))
		for i, x := range xs {
			v[i] = f(x)
		}
		slices.Sort(v)
		return v[min(len(v)-1, int(p*float64(len(v))))]
	}
	added := func(o obs) float64 { return o.added }
	slices.Sort(samples)
	var peak, median int64
	if len(samples) > 0 {
		peak, median = samples[len(samples)-1], samples[len(samples)/2]
	}
	meanAPI := 0.0
	for _, o := range all {
		meanAPI += o.api
	}
	if len(all) > 0 {
		meanAPI /= float64(len(all))
	}
	fmt.Printf("triggers=%d results=%d offered=%d/s elapsed=%.2fs throughput=%.0f/s pub=%.2fs "+
		"added_p50=%.1fms added_p99=%.1fms added_max=%.1fms steady_added_p50=%.1fms steady_added_p99=%.1fms steady_n=%d "+
		"api_mean=%.0fms inflight_median=%d inflight_peak=%d dups=%d not_ok=%d%s pub_errors=%d\n",
		total, len(got), *rate, elapsed.Seconds(), float64(len(got))/elapsed.Seconds(), pubDone.Seconds(),
		pct(all, added, 0.5), pct(all, added, 0.99), pct(all, added, 1), pct(steady, added, 0.5), pct(steady, added, 0.99), len(steady),
		meanAPI, median, peak, dups, notOK, codeList(codes), pubErrors)
	if len(got) < total {
		return fmt.Errorf("%d of %d results", len(got), total)
	}
	return nil
}

func waitForConsumer(ctx context.Context, js jetstream.JetStream, stream string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if s, err := js.Stream(ctx, stream); err == nil {
			l := s.ListConsumers(ctx)
			for range l.Info() {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no consumer on %s after %s", stream, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// codeList is ",code:n" for each error code of the results that did not
// succeed.
func codeList(codes map[string]int) string {
	keys := make([]string, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, ",%s:%d", k, codes[k])
	}
	return b.String()
}
