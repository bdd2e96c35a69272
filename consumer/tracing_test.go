package consumer

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"customactions/events"
)

const (
	testTraceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	testParentID = "00f067aa0ba902b7"
	testParent   = "00-" + testTraceID + "-" + testParentID + "-01"
)

// traceAPI answers the statuses of answers in turn (200 after them) and
// records the traceparent of each request.
type traceAPI struct {
	*httptest.Server
	mu      sync.Mutex
	parents []string
}

func newTraceAPI(t *testing.T, answers ...int) *traceAPI {
	a := &traceAPI{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		n := len(a.parents)
		a.parents = append(a.parents, r.Header.Get("traceparent"))
		a.mu.Unlock()
		if n < len(answers) {
			w.WriteHeader(answers[n])
			return
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *traceAPI) received() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.parents...)
}

// publishTraced publishes tr with a traceparent header (none when "").
func publishTraced(h *harness, tr *events.Trigger, parent string) {
	h.t.Helper()
	data, err := json.Marshal(tr)
	if err != nil {
		h.t.Fatal(err)
	}
	msg := &nats.Msg{Subject: h.subj.Trigger(tr.Source, tr.ActionID), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, tr.ID)
	if parent != "" {
		msg.Header["traceparent"] = []string{parent} // as written by other clients: lower case
	}
	if _, err := h.js.PublishMsg(h.t.Context(), msg); err != nil {
		h.t.Fatal(err)
	}
}

func TestTracingTriggerAndAttempts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	as := newAuthServer(t)
	h.putToken(as.token())
	api := newTraceAPI(t, http.StatusUnauthorized) // the first attempt: a refresh and a second one
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	h.start(WithTracerProvider(tp))

	tr := as.trigger("traced")
	tr.Request.URL = api.URL + "/orders?api_key=query-secret-123"
	tr.Request.Headers = map[string]string{"X-Custom": "header-secret-456"}
	publishTraced(h, tr, testParent)
	if r := h.result("traced", 10*time.Second); r.Status != events.StatusSucceeded || r.Attempts != 2 || !r.TokenRefreshed {
		t.Fatalf("result %+v %+v, want succeeded after 2 attempts with a refresh", r, r.Error)
	}

	var spans tracetest.SpanStubs
	var root *tracetest.SpanStub
	for deadline := time.Now().Add(5 * time.Second); root == nil && time.Now().Before(deadline); {
		spans = exp.GetSpans() // the trigger span ends just after its result is stored
		for i := range spans {
			if spans[i].Name == "trigger create-order" {
				root = &spans[i]
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if root == nil {
		t.Fatalf("no span \"trigger create-order\" among %d spans", len(spans))
	}
	if got := root.Parent; got.TraceID().String() != testTraceID || got.SpanID().String() != testParentID || !got.IsRemote() {
		t.Errorf("trigger span parent = %s/%s remote=%v, want the message's %s", got.TraceID(), got.SpanID(), got.IsRemote(), testParent)
	}
	var names []string
	for _, e := range root.Events {
		names = append(names, e.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "token") {
		t.Errorf("trigger span events %v, want the token refresh noted", names)
	}

	var attempts []tracetest.SpanStub
	for _, s := range spans {
		if s.Parent.SpanID() == root.SpanContext.SpanID() && s.SpanKind == trace.SpanKindClient {
			attempts = append(attempts, s)
		}
	}
	if len(attempts) != 2 {
		t.Fatalf("%d attempt spans under the trigger span, want 2", len(attempts))
	}
	parents := api.received()
	if len(parents) != 2 {
		t.Fatalf("API called %d times, want 2", len(parents))
	}
	for i, s := range attempts {
		attrs := map[string]any{}
		for _, kv := range s.Attributes {
			attrs[string(kv.Key)] = kv.Value.AsInterface()
			assertNoSecret(t, "span attribute "+string(kv.Key), kv.Value.String(), "query-secret", "header-secret", "secretvalue", "/orders")
		}
		wantStatus := []int64{401, 200}[i]
		if s.Name != "HTTP POST" || attrs["http.request.method"] != "POST" || attrs["attempt"] != int64(i+1) ||
			attrs["http.response.status_code"] != wantStatus {
			t.Errorf("attempt span %d: %s %v, want HTTP POST, attempt %d, status %d", i+1, s.Name, attrs, i+1, wantStatus)
		}
		want := "00-" + testTraceID + "-" + s.SpanContext.SpanID().String() + "-01"
		if parents[i] != want {
			t.Errorf("attempt %d sent traceparent %q, want %q (its own span in the trigger's trace)", i+1, parents[i], want)
		}
	}
	for _, kv := range root.Attributes {
		assertNoSecret(t, "span attribute "+string(kv.Key), kv.Value.String(), "query-secret", "header-secret", "secretvalue")
	}
}

func TestTracingOffSendsNoTraceparent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	api := newTraceAPI(t)
	h.start()

	plain := &events.Trigger{ID: "plain", ActionID: "notify", Source: "inbox", Request: events.Request{Method: "POST", URL: api.URL + "/hook"}}
	publishTraced(h, plain, testParent)
	h.result("plain", 10*time.Second)
	// A traceparent the trigger sets itself is sent as it is.
	own := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	set := &events.Trigger{ID: "own", ActionID: "notify", Source: "inbox",
		Request: events.Request{Method: "POST", URL: api.URL + "/hook", Headers: map[string]string{"traceparent": own}}}
	publishTraced(h, set, testParent)
	h.result("own", 10*time.Second)

	if got := api.received(); len(got) != 2 || got[0] != "" || got[1] != own {
		t.Errorf("traceparents received %q, want none, then the trigger's own %q", got, own)
	}
}

func TestWithTracerProviderOff(t *testing.T) {
	tests := []struct {
		name string
		tp   trace.TracerProvider
		want bool
	}{
		{name: "nil", tp: nil, want: false},
		{name: "noop", tp: noop.NewTracerProvider(), want: false},
		{name: "sdk", tp: sdktrace.NewTracerProvider(), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Service{}
			WithTracerProvider(tt.tp)(s)
			if got := s.tracer != nil; got != tt.want {
				t.Errorf("tracing on = %v, want %v", got, tt.want)
			}
		})
	}
}
