package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/events"
	"customactions/internal/natstest"
)

// process is the consumer running as a separate OS process (this test
// binary re-executed, see TestMain).
type process struct {
	cmd *exec.Cmd
	out *lockedWriter
}

func startProcess(t *testing.T, env ...string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "run")
	cmd.Env = append(os.Environ(), append([]string{"CONSUMER_TEST_MAIN=1"}, env...)...)
	p := &process{cmd: cmd, out: &lockedWriter{buf: &bytes.Buffer{}}}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	return p
}

// TestSIGKILLUnderLoad: two consumer processes share the durable consumer;
// one is killed with SIGKILL under load. The survivor finishes everything,
// every trigger has exactly one stored result, and the test reports how
// many action calls were made twice.
func TestSIGKILLUnderLoad(t *testing.T) {
	srv := natstest.Start(t)
	var mu sync.Mutex
	perKey := map[string]int{}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		perKey[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}))
	t.Cleanup(api.Close)
	env := []string{"NATS_URL=" + srv.ClientURL(), "ACTIONS_ALLOW_PRIVATE_NETWORKS=true", "ACTIONS_ACK_WAIT=3s",
		"ACTIONS_WORKERS=16", "ACTIONS_LOG_LEVEL=warn"}
	victim := startProcess(t, env...)
	survivor := startProcess(t, env...)

	nc, js := natstest.Connect(t, srv)
	_ = nc
	waitConsumer(t, js)
	const n = 800
	for i := range n {
		tr := events.Trigger{ID: "K" + strconv.Itoa(i), ActionID: "load", Source: "inbox", Request: events.Request{Method: "POST", URL: api.URL}}
		data, _ := json.Marshal(tr)
		msg := &nats.Msg{Subject: "actions.trigger.inbox.load", Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, tr.ID)
		if _, err := js.PublishMsgAsync(msg); err != nil {
			t.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	// Kill one process mid-run.
	for countResults(t, js) < n/4 {
		time.Sleep(20 * time.Millisecond)
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = victim.cmd.Process.Wait()
	killedAt := countResults(t, js)

	deadline := time.Now().Add(90 * time.Second)
	for countResults(t, js) < n && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	results := readResults(t, js)
	seen := map[string]int{}
	for _, r := range results {
		seen[r.TriggerID]++
	}
	missing, dup := 0, 0
	for i := range n {
		switch seen["K"+strconv.Itoa(i)] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	mu.Lock()
	twice := 0
	for _, c := range perKey {
		if c > 1 {
			twice++
		}
	}
	mu.Unlock()
	t.Logf("SIGKILL of one of two processes after %d of %d results: %d results stored, %d missing, %d duplicated; %d action calls made twice (in flight in the killed process, redelivered after AckWait)",
		killedAt, n, len(results), missing, dup, twice)
	if missing > 0 || dup > 0 || len(results) != n {
		t.Errorf("want exactly one result per trigger")
	}
	// The survivor stops cleanly on SIGTERM.
	if err := survivor.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- survivor.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("survivor exit: %v\n%s", err, survivor.out.String())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("survivor did not stop on SIGTERM")
	}
}

func waitConsumer(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := js.Consumer(context.Background(), events.DefaultTriggerStream, events.DefaultDurable); err == nil && c != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the consumer processes did not create the durable consumer")
}

func countResults(t *testing.T, js jetstream.JetStream) int {
	s, err := js.Stream(context.Background(), events.DefaultResultStream)
	if err != nil {
		return 0
	}
	info, err := s.Info(context.Background())
	if err != nil {
		return 0
	}
	return int(info.State.Msgs)
}

func readResults(t *testing.T, js jetstream.JetStream) []events.Result {
	t.Helper()
	out, err := natstest.ReadAll[events.Result](js, events.DefaultResultStream, "actions.result.>")
	if err != nil {
		t.Fatal(err)
	}
	return out
}
