package webui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/events"
	"customactions/internal/natstest"
)

// logsUI serves the UI over a JetStream server whose log stream holds 250
// events of triggers t-0 .. t-249 (oldest first, one second apart from
// base): every third of action "b", every fifth failed with HTTP 500,
// every seventh with token "tok", each with a context holding conversation
// "conv-<i mod 10>".
func logsUI(t *testing.T) (srv *httptest.Server, c *http.Client, base time.Time) {
	t.Helper()
	ns := natstest.Start(t)
	_, js := natstest.Connect(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: events.DefaultLogStream, Subjects: []string{"actions.log.>"}}); err != nil {
		t.Fatal(err)
	}
	base = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for i := range 250 {
		e := events.LogEvent{Time: events.FormatTime(base.Add(time.Duration(i) * time.Second)), Level: events.LevelInfo,
			Event: events.EventActionSucceeded, ActionID: "a", TriggerID: fmt.Sprintf("t-%d", i), Message: "ok",
			Details: map[string]any{"http_status": 200}, Context: json.RawMessage(fmt.Sprintf(`{"conversation":{"id":"conv-%d"}}`, i%10))}
		if i%3 == 0 {
			e.ActionID = "b"
		}
		if i%5 == 0 {
			e.Level, e.Event, e.Details = events.LevelError, events.EventActionFailed, map[string]any{"http_status": 500, "code": "http_error"}
		}
		if i%7 == 0 {
			e.TokenID = "tok"
		}
		data, _ := json.Marshal(e)
		if _, err := js.Publish(ctx, "actions.log."+e.ActionID, data); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(Config{Password: "pw-correct-horse", Prefix: "actions"}, echoAdmin{}, js, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	c = &http.Client{Jar: jar}
	if code, _ := post(t, c, srv.URL+"/ui/login", `{"password":"pw-correct-horse"}`, false); code != 200 {
		t.Fatalf("login: %d", code)
	}
	return srv, c, base
}

type testPage struct {
	Events []events.LogEvent `json:"events"`
	Older  uint64            `json:"older"`
	Newer  uint64            `json:"newer"`
}

func getLogs(t *testing.T, srv *httptest.Server, c *http.Client, q url.Values) (testPage, int) {
	t.Helper()
	resp, err := c.Get(srv.URL + "/ui/api/logs?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p testPage
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
			t.Fatal(err)
		}
	}
	return p, resp.StatusCode
}

func triggers(p testPage) string {
	ids := make([]string, len(p.Events))
	for i, e := range p.Events {
		ids[i] = e.TriggerID
	}
	return strings.Join(ids, ",")
}

func TestLogsPaging(t *testing.T) {
	t.Parallel()
	srv, c, _ := logsUI(t)
	first, _ := getLogs(t, srv, c, url.Values{})
	if len(first.Events) != 100 || first.Events[0].TriggerID != "t-249" || first.Events[99].TriggerID != "t-150" {
		t.Fatalf("first page: %d events %s", len(first.Events), triggers(first))
	}
	if first.Older == 0 || first.Newer != 0 {
		t.Fatalf("first page cursors: older %d newer %d", first.Older, first.Newer)
	}
	second, _ := getLogs(t, srv, c, url.Values{"before": {fmt.Sprint(first.Older)}})
	if len(second.Events) != 100 || second.Events[0].TriggerID != "t-149" || second.Newer == 0 || second.Older == 0 {
		t.Fatalf("second page: %d events %s, older %d newer %d", len(second.Events), triggers(second), second.Older, second.Newer)
	}
	third, _ := getLogs(t, srv, c, url.Values{"before": {fmt.Sprint(second.Older)}})
	if len(third.Events) != 50 || third.Events[49].TriggerID != "t-0" || third.Older != 0 {
		t.Fatalf("last page: %d events, older %d", len(third.Events), third.Older)
	}
	back, _ := getLogs(t, srv, c, url.Values{"after": {fmt.Sprint(third.Newer)}})
	if triggers(back) != triggers(second) {
		t.Errorf("newer than the last page: %s, want the second page", triggers(back))
	}
	back, _ = getLogs(t, srv, c, url.Values{"after": {fmt.Sprint(second.Newer)}})
	if triggers(back) != triggers(first) || back.Newer != 0 {
		t.Errorf("newer than the second page: %s (newer %d), want the first page", triggers(back), back.Newer)
	}
	small, _ := getLogs(t, srv, c, url.Values{"limit": {"10"}})
	if len(small.Events) != 10 {
		t.Errorf("limit 10: %d events", len(small.Events))
	}
}

func TestLogsFilters(t *testing.T) {
	t.Parallel()
	srv, c, base := logsUI(t)
	tests := []struct {
		name  string
		query url.Values
		want  int    // matches
		check string // a trigger the page must start with ("" any)
	}{
		{"trigger id", url.Values{"trigger": {"t-42"}}, 1, "t-42"},
		{"action", url.Values{"action": {"b"}}, 84, "t-249"},
		{"token", url.Values{"token": {"tok"}}, 36, "t-245"},
		{"status failed", url.Values{"status": {"failed"}}, 50, "t-245"},
		{"status succeeded", url.Values{"status": {"succeeded"}, "limit": {"500"}}, 200, "t-249"},
		{"HTTP status", url.Values{"status": {"500"}, "limit": {"500"}}, 50, "t-245"},
		{"context value", url.Values{"context": {"conv-3"}}, 25, "t-243"},
		{"context and token", url.Values{"context": {"conv-0"}, "token": {"tok"}}, 4, "t-210"},
		{"time range", url.Values{"from": {events.FormatTime(base.Add(10 * time.Second))}, "to": {events.FormatTime(base.Add(19 * time.Second))}}, 10, "t-19"},
		{"nothing", url.Values{"trigger": {"t-999"}}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, code := getLogs(t, srv, c, tt.query)
			want := tt.want
			if tt.query.Get("limit") == "" {
				want = min(want, 100)
			}
			if code != 200 || len(p.Events) != want {
				t.Fatalf("%d: %d events (%s), want %d", code, len(p.Events), triggers(p), want)
			}
			if tt.check != "" && p.Events[0].TriggerID != tt.check {
				t.Errorf("newest match %s, want %s", p.Events[0].TriggerID, tt.check)
			}
		})
	}
	for _, q := range []url.Values{{"action": {"bad id"}}, {"status": {"maybe"}}, {"from": {"yesterday"}}} {
		if _, code := getLogs(t, srv, c, q); code != 400 {
			t.Errorf("%v: %d, want 400", q, code)
		}
	}
}

func TestLogsExport(t *testing.T) {
	t.Parallel()
	srv, c, _ := logsUI(t)
	resp, err := c.Get(srv.URL + "/ui/api/logs?format=jsonl&status=failed")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment; filename=\"logs-") {
		t.Fatalf("export: %d %v", resp.StatusCode, resp.Header)
	}
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("export of the failed events: %d lines", len(lines))
	}
	for _, l := range lines {
		var e events.LogEvent
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Event != events.EventActionFailed {
			t.Errorf("line %q: %v", l, err)
		}
	}
}
