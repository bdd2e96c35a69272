package consumer

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"customactions/auth"
	"customactions/events"
)

// labelValues gathers reg and returns, per metric name, the label sets of
// its series (label name to value).
func labelValues(t *testing.T, reg *prometheus.Registry) map[string][]map[string]string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]map[string]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			out[mf.GetName()] = append(out[mf.GetName()], labels)
		}
	}
	return out
}

// distinct returns the distinct values of label over series.
func distinct(series []map[string]string, label string) map[string]bool {
	out := map[string]bool{}
	for _, s := range series {
		out[s[label]] = true
	}
	return out
}

func randomID(r *rand.Rand) string {
	return fmt.Sprintf("act-%016x", r.Uint64())
}

// TestMetricsActionSeriesBounded: a producer sending 5000 random action ids
// (and token ids) does not create 5000 series: beyond DefaultMaxSeries they
// are counted as "_other", and no label holds an id past the bound.
func TestMetricsActionSeriesBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	r := rand.New(rand.NewPCG(1, 2))
	admitted := map[string]bool{}
	for i := range 5000 {
		id := randomID(r)
		if i < DefaultMaxSeries {
			admitted[id] = true
		}
		m.call(id, time.Millisecond)
		m.result(&events.Result{ActionID: id, Source: events.SourceInbox, Status: events.StatusSucceeded, Attempts: 1})
		m.refreshed("tok-" + id)
		m.refreshFailure("tok-" + id)
	}
	// Rejected triggers with random action ids add no action at all.
	for range 5000 {
		m.result(&events.Result{ActionID: randomID(r), Source: events.SourceBot, Status: events.StatusRejected,
			Error: &events.Error{Code: events.CodeInvalidTrigger}})
	}
	got := labelValues(t, reg)
	for _, name := range []string{"actions_triggers_total", "actions_call_duration_seconds", "actions_call_attempts_total"} {
		actions := distinct(got[name], "action")
		if len(actions) > DefaultMaxSeries+2 {
			t.Errorf("%s: %d action label values, want at most %d", name, len(actions), DefaultMaxSeries+2)
		}
		for a := range actions {
			if a != labelOverflow && a != labelInvalid && !admitted[a] {
				t.Errorf("%s: action label %q is neither one of the first %d ids nor _other/_invalid", name, a, DefaultMaxSeries)
				break
			}
		}
		if !actions[labelOverflow] {
			t.Errorf("%s: no %q series for the ids past the bound", name, labelOverflow)
		}
	}
	if n := len(got["actions_triggers_total"]); n > (DefaultMaxSeries+2)*4*5 {
		t.Errorf("actions_triggers_total has %d series", n)
	}
	if !distinct(got["actions_triggers_total"], "action")[labelInvalid] {
		t.Errorf("rejected triggers of unknown actions are not counted under %q", labelInvalid)
	}
	for _, name := range []string{"actions_token_refreshes_total", "actions_token_refresh_failures_total"} {
		if n := len(distinct(got[name], "token")); n > DefaultMaxSeries+1 {
			t.Errorf("%s: %d token label values, want at most %d", name, n, DefaultMaxSeries+1)
		}
	}
}

// TestMetricsLabelsFromKnownSets: source and status come only from their
// known sets, a rejected trigger never adds an action, an invalid id never
// becomes a label.
func TestMetricsLabelsFromKnownSets(t *testing.T) {
	tests := []struct {
		name string
		res  events.Result
		want map[string]string
	}{
		{"bogus source", events.Result{ActionID: "act", Source: "email\"} evil{x=\"", Status: events.StatusSucceeded},
			map[string]string{"action": "act", "source": "other", "status": "succeeded"}},
		{"empty source", events.Result{ActionID: "act", Status: events.StatusFailed},
			map[string]string{"action": "act", "source": "other", "status": "failed"}},
		{"bogus status", events.Result{ActionID: "act", Source: events.SourceBot, Status: "pwned"},
			map[string]string{"action": "act", "source": "bot", "status": "other"}},
		{"rejected unknown action", events.Result{ActionID: "never-seen", Source: events.SourceInbox, Status: events.StatusRejected},
			map[string]string{"action": "_invalid", "source": "inbox", "status": "rejected"}},
		{"rejected malformed action", events.Result{ActionID: "a.b.>", Source: "x", Status: events.StatusRejected},
			map[string]string{"action": "_invalid", "source": "other", "status": "rejected"}},
		{"rejected known action", events.Result{ActionID: "known", Source: events.SourceTest, Status: events.StatusRejected},
			map[string]string{"action": "known", "source": "test", "status": "rejected"}},
		{"invalid id on a live result", events.Result{ActionID: "a b", Source: events.SourceInbox, Status: events.StatusFailed},
			map[string]string{"action": "_invalid", "source": "inbox", "status": "failed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			m.call("known", time.Millisecond) // an action counted already
			m.result(&tc.res)
			series := labelValues(t, reg)["actions_triggers_total"]
			if len(series) != 1 {
				t.Fatalf("%d series, want 1: %v", len(series), series)
			}
			for k, v := range tc.want {
				if series[0][k] != v {
					t.Errorf("label %s = %q, want %q (series %v)", k, series[0][k], v, series[0])
				}
			}
			if d := distinct(labelValues(t, reg)["actions_call_duration_seconds"], "action"); len(d) != 1 || !d["known"] {
				t.Errorf("call duration actions = %v, want only known", d)
			}
		})
	}
}

// TestMetricsMaxActionSeriesOption: the bound is a setting, and holds when
// many goroutines record new actions at once.
func TestMetricsMaxActionSeriesOption(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, WithMaxActionSeries(10), WithMaxTokenSeries(3))
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				m.call(fmt.Sprintf("g%d-%d", g, i), time.Millisecond)
				m.refreshed(fmt.Sprintf("t%d-%d", g, i))
			}
		}()
	}
	for range 8 {
		<-done
	}
	got := labelValues(t, reg)
	if d := distinct(got["actions_call_duration_seconds"], "action"); len(d) != 11 || !d[labelOverflow] {
		t.Errorf("%d action values (%v), want 10 and _other", len(d), d)
	}
	if d := distinct(got["actions_token_refreshes_total"], "token"); len(d) != 4 || !d[labelOverflow] {
		t.Errorf("%d token values (%v), want 3 and _other", len(d), d)
	}
}

// TestMetricsThroughService: the service's own results are counted with
// bounded labels: past the bound the actions share "_other", and triggers
// rejected on a bogus source or a malformed subject add no action.
func TestMetricsThroughService(t *testing.T) {
	h := newHarness(t, Config{})
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {})
	reg := prometheus.NewRegistry()
	h.start(WithMetrics(NewMetrics(reg, WithMaxActionSeries(2))))
	for i := range 5 {
		h.trigger(&events.Trigger{ID: fmt.Sprintf("m%d", i), ActionID: fmt.Sprintf("act%d", i), Source: events.SourceInbox,
			Request: events.Request{Method: "GET", URL: api.URL}})
	}
	h.publish("actions.trigger.email.spam1", &events.Trigger{ID: "bad1", ActionID: "spam1", Source: "email",
		Request: events.Request{Method: "GET", URL: api.URL}})
	h.publish("actions.trigger.inbox.a.b", []byte(`{"id":"bad2","action_id":"a.b","source":"nowhere"}`))
	h.results(7, 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	var series []map[string]string
	for time.Now().Before(deadline) {
		series = labelValues(t, reg)["actions_triggers_total"]
		total := 0.0
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "actions_triggers_total" {
				for _, m := range mf.GetMetric() {
					total += m.GetCounter().GetValue()
				}
			}
		}
		if total >= 7 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	actions := distinct(series, "action")
	if len(actions) > 4 || !actions[labelOverflow] || !actions[labelInvalid] {
		t.Errorf("action values %v, want 2 actions, _other and _invalid", actions)
	}
	for _, s := range series {
		for k, v := range s {
			if strings.Contains(v, "spam") || strings.Contains(v, "email") || strings.Contains(v, "nowhere") || strings.Contains(v, ".") {
				t.Errorf("label %s=%q holds a rejected producer's value", k, v)
			}
		}
	}
}

// TestMetricsTokenHealthHook: each health change is counted by its new
// status (a status outside the known set is "other"), the next hook still
// hears it, and without metrics the hook is the next one unchanged.
func TestMetricsTokenHealthHook(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	var heard []string
	hook := m.TokenHealthHook(func(c auth.HealthChange) { heard = append(heard, c.To) })
	for _, to := range []string{auth.HealthOK, auth.HealthDegraded, auth.HealthOK, auth.HealthReauthorizationRequired, "bogus\"{x=\"y"} {
		hook(auth.HealthChange{TokenID: "crm", To: to})
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "actions_token_health_changes_total" {
			for _, mt := range mf.GetMetric() {
				got[mt.GetLabel()[0].GetValue()] = mt.GetCounter().GetValue()
			}
		}
	}
	want := map[string]float64{"ok": 2, "degraded": 1, "reauthorization_required": 1, "other": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("changes %v, want %v", got, want)
	}
	if len(heard) != 5 {
		t.Errorf("the next hook heard %d changes, want 5", len(heard))
	}
	var nilMetrics *Metrics
	if nilMetrics.TokenHealthHook(nil) != nil {
		t.Error("no metrics and no next hook: want a nil hook")
	}
	m.TokenHealthHook(nil)(auth.HealthChange{To: auth.HealthOK}) // no next hook: counted only
}
