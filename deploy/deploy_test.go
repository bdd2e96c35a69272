// Package deploy_test runs deploy/local-cluster.sh: a 3-node JetStream
// cluster with the accounts and permissions of deploy/nats, and two consumer
// replicas, and checks what each user may do.
package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func loadEnv(t *testing.T, path string) map[string]string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			env[k] = v
		}
	}
	return env
}

func script(t *testing.T, dir string, base int, verb string, env ...string) {
	t.Helper()
	cmd := exec.Command("bash", "local-cluster.sh", verb, dir)
	cmd.Env = append(append(os.Environ(), fmt.Sprintf("BASE_PORT=%d", base)), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			t.Logf("%s:\n%s", l, tail(string(b), 2000))
		}
		t.Fatalf("local-cluster.sh %s: %v\n%s", verb, err, out)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// connectAs connects as a user and collects its asynchronous errors
// (permission violations).
func connectAs(t *testing.T, env map[string]string, user, password string) (*nats.Conn, chan error) {
	errs := make(chan error, 16)
	nc, err := nats.Connect(env["NATS_URL"], nats.UserInfo(user, password), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

// upCluster runs local-cluster.sh up with the knobs in knobs (NAME=value)
// until the test ends, and returns its directory and env file.
func upCluster(t *testing.T, knobs ...string) (dir string, env map[string]string) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	dir = t.TempDir()
	// Below the ephemeral range (32768+), where other tests' listeners come from.
	base := 20000 + rand.IntN(900)*10
	t.Cleanup(func() { script(t, dir, base, "down") })
	script(t, dir, base, "up", knobs...)
	return dir, loadEnv(t, filepath.Join(dir, "env"))
}

func TestLocalClusterWithPermissions(t *testing.T) {
	_, env := upCluster(t)

	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(201)
	}))
	t.Cleanup(api.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The subscriber reads results through a JetStream consumer.
	subNC, _ := connectAs(t, env, "subscriber", env["ACTIONS_SUBSCRIBER_PASSWORD"])
	results := make(chan *nats.Msg, 4)
	if _, err := subNC.ChanSubscribe("actions.result.deploy-test", results); err != nil {
		t.Fatal(err)
	}
	subJS, _ := jetstream.New(subNC)

	// The producer publishes a trigger.
	prodNC, prodErrs := connectAs(t, env, "producer", env["ACTIONS_PRODUCER_PASSWORD"])
	prodJS, _ := jetstream.New(prodNC)
	trigger := fmt.Sprintf(`{"id":"dt-1","action_id":"deploy-test","source":"inbox","request":{"method":"POST","url":"%s/x"}}`, api.URL)
	if _, err := prodJS.Publish(ctx, "actions.trigger.inbox.deploy-test", []byte(trigger), jetstream.WithMsgID("dt-1")); err != nil {
		t.Fatalf("producer publishes a trigger: %v", err)
	}
	select {
	case m := <-results:
		var r struct {
			TriggerID  string `json:"trigger_id"`
			Status     string `json:"status"`
			HTTPStatus int    `json:"http_status"`
		}
		_ = json.Unmarshal(m.Data, &r)
		if r.TriggerID != "dt-1" || r.Status != "succeeded" || r.HTTPStatus != 201 {
			t.Errorf("result %s", m.Data)
		}
	case <-ctx.Done():
		t.Fatal("no result")
	}
	if err := readStored(subJS, "ACTIONS_RESULTS", "dt-1"); err != nil {
		t.Errorf("subscriber reads a stored result: %v", err)
	}

	// The producer cannot read tokens, send admin requests or read results.
	if _, err := prodJS.KeyValue(short(t), "action_tokens"); err == nil {
		t.Error("the producer opened the tokens bucket")
	}
	if _, err := prodNC.Request("actions.admin.tokens.list", []byte(`{}`), 2*time.Second); err == nil {
		t.Error("the producer's admin request was answered")
	}
	if _, err := prodNC.SubscribeSync("actions.result.>"); err == nil {
		_ = prodNC.Flush()
	}
	denied := 0
	deadline := time.After(5 * time.Second)
	for denied < 2 {
		select {
		case err := <-prodErrs:
			if strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				denied++
			}
		case <-deadline:
			t.Fatalf("%d permission violations reported for the producer, want at least 2", denied)
		}
	}
	// The subscriber cannot publish triggers.
	if _, err := subJS.Publish(short(t), "actions.trigger.inbox.deploy-test", []byte(trigger)); err == nil {
		t.Error("the subscriber published a trigger")
	}

	// The admin can; ops can read the log events.
	adminNC, _ := connectAs(t, env, "admin", env["ACTIONS_ADMIN_PASSWORD"])
	m, err := adminNC.Request("actions.admin.tokens.list", []byte(`{}`), 10*time.Second)
	if err != nil || !strings.Contains(string(m.Data), `"tokens"`) {
		t.Errorf("admin tokens.list: %v", err)
	}
	opsNC, _ := connectAs(t, env, "ops", env["ACTIONS_OPS_PASSWORD"])
	opsJS, _ := jetstream.New(opsNC)
	if err := readStored(opsJS, "ACTIONS_LOGS", "action_succeeded"); err != nil {
		t.Errorf("ops reads a log event: %v", err)
	}
	if _, err := opsJS.KeyValue(short(t), "action_tokens"); err == nil {
		t.Error("ops opened the tokens bucket")
	}

	// The trigger shows in the metrics of the replica that ran it.
	total := 0
	for _, addr := range []string{env["ACTIONS_METRICS_1"], env["ACTIONS_METRICS_2"]} {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), `actions_triggers_total{action="deploy-test",source="inbox",status="succeeded"} 1`) {
			total++
		}
	}
	if total != 1 {
		t.Errorf("the trigger is counted by %d replicas, want 1", total)
	}
}

// short is the deadline of a request that permissions must deny: a denied
// request gets no answer.
func short(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// readStored reads the first message of stream with an ordered consumer and
// checks it holds want. A consumer just created on an R3 stream may need a
// moment for its leader, so a failed read is tried again for up to 15 s;
// a permission error never passes.
func readStored(js jetstream.JetStream, stream, want string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := js.Stream(ctx, stream)
			if err != nil {
				return fmt.Errorf("stream info: %w", err)
			}
			c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
			if err != nil {
				return fmt.Errorf("create consumer: %w", err)
			}
			m, err := c.Next(jetstream.FetchMaxWait(3 * time.Second))
			if err != nil {
				return fmt.Errorf("next: %w", err)
			}
			if !strings.Contains(string(m.Data()), want) {
				return fmt.Errorf("first message %s lacks %q", m.Data(), want)
			}
			return nil
		}()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}
