package webui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/admin"
	"customactions/events"
)

// Paging of the Logs tab.
const (
	logPageSize = 100   // events per page by default
	logPageMax  = 500   // largest page a client may ask for
	logScanMax  = 20000 // stream messages read at most per request
)

// logQuery is what the Logs tab filters on. Every field but Action is
// matched after decoding; Action narrows the subject.
type logQuery struct {
	Action, Level, Event string
	Trigger, Token       string // exact trigger_id, token_id
	// Status is a result status (succeeded, failed, rejected,
	// breaker_open, authorization_required), matched by the events that report it, or an HTTP
	// status (details.http_status).
	Status string
	// Context matches an event whose context holds this value at any
	// depth (a conversation id, a contact id).
	Context  string
	From, To time.Time // zero: unbounded
}

// statusEvents are the log events that report each result status.
var statusEvents = map[string][]string{
	events.StatusSucceeded:   {events.EventActionSucceeded},
	events.StatusFailed:      {events.EventActionFailed, events.EventTokenRefreshFailed},
	events.StatusRejected:    {events.EventTriggerRejected},
	events.StatusBreakerOpen: {events.EventBreakerRejected},
	// No call was made: the end user was sent a connect link.
	events.StatusAuthorizationRequired: {events.EventAuthorizationRequired},
}

func parseLogQuery(q url.Values) (logQuery, error) {
	lq := logQuery{Action: q.Get("action"), Level: q.Get("level"), Event: q.Get("event"), Trigger: q.Get("trigger"),
		Token: q.Get("token"), Status: q.Get("status"), Context: q.Get("context")}
	if lq.Action != "" && !events.ValidID(lq.Action) {
		return lq, fmt.Errorf("invalid action id")
	}
	if lq.Status != "" {
		if _, ok := statusEvents[lq.Status]; !ok {
			if _, err := strconv.Atoi(lq.Status); err != nil {
				return lq, fmt.Errorf("status must be succeeded, failed, rejected, breaker_open, authorization_required or an HTTP status")
			}
		}
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &lq.From}, {"to", &lq.To}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return lq, fmt.Errorf("%s must be an RFC 3339 time", p.name)
			}
			*p.dst = t
		}
	}
	return lq, nil
}

// match reports whether the encoded event e meets q.
func (q *logQuery) match(e *events.LogEvent) bool {
	if (q.Level != "" && e.Level != q.Level) || (q.Event != "" && e.Event != q.Event) ||
		(q.Trigger != "" && e.TriggerID != q.Trigger) || (q.Token != "" && e.TokenID != q.Token) {
		return false
	}
	if q.Status != "" && !q.matchStatus(e) {
		return false
	}
	if !q.From.IsZero() || !q.To.IsZero() {
		t, err := time.Parse(time.RFC3339Nano, e.Time)
		if err != nil || (!q.From.IsZero() && t.Before(q.From)) || (!q.To.IsZero() && t.After(q.To)) {
			return false
		}
	}
	if q.Context != "" {
		var v any
		if len(e.Context) == 0 || json.Unmarshal(e.Context, &v) != nil || !holds(v, q.Context) {
			return false
		}
	}
	return true
}

func (q *logQuery) matchStatus(e *events.LogEvent) bool {
	if evs, ok := statusEvents[q.Status]; ok {
		for _, ev := range evs {
			if e.Event == ev {
				return true
			}
		}
		return false
	}
	n, ok := e.Details["http_status"].(float64)
	return ok && strconv.Itoa(int(n)) == q.Status
}

// holds reports whether want is a leaf value of v (strings as they are,
// numbers and booleans as JSON writes them).
func holds(v any, want string) bool {
	switch x := v.(type) {
	case map[string]any:
		for _, c := range x {
			if holds(c, want) {
				return true
			}
		}
	case []any:
		for _, c := range x {
			if holds(c, want) {
				return true
			}
		}
	case string:
		return x == want
	case nil:
		return false
	default:
		b, _ := json.Marshal(x)
		return string(b) == want
	}
	return false
}

// logPage is the answer of GET /ui/api/logs: events newest first, and the
// cursors of the pages around it (0: none). Pass Older as before= and
// Newer as after=.
type logPage struct {
	Events []json.RawMessage `json:"events"`
	Older  uint64            `json:"older,omitempty"`
	Newer  uint64            `json:"newer,omitempty"`
	// Scanned is how many stored events were read for this page.
	Scanned int `json:"scanned"`
}

// logs answers GET /ui/api/logs: the log events that match the query
// parameters (action, level, event, trigger, token, status, context, from,
// to), newest first, a page of limit (default 100, at most 500) before the
// stream sequence `before` (default: the newest) or, with `after`, the
// page just after that sequence. It reads at most logScanMax stored events
// per request. With format=jsonl it downloads every match of that scan as
// JSON lines instead.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lq, err := parseLogQuery(q)
	if err != nil {
		writeJSON(w, 400, errBody("bad_request", err.Error()))
		return
	}
	limit := logPageSize
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 && n <= logPageMax {
		limit = n
	}
	export := q.Get("format") == "jsonl"
	if export {
		limit = logScanMax
	}
	before, _ := strconv.ParseUint(q.Get("before"), 10, 64)
	after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
	page, err := s.logPage(r.Context(), &lq, limit, before, after)
	if err != nil {
		writeJSON(w, 502, errBody("internal", err.Error()))
		return
	}
	if !export {
		writeJSON(w, 200, page)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="logs-`+s.now().UTC().Format("20060102-150405")+`.jsonl"`)
	for _, e := range page.Events {
		_, _ = w.Write(append(e, '\n'))
	}
}

// logPage reads one page of matching log events: with after > 0 the
// oldest limit matches after it, else the newest limit matches before
// `before` (0: the end of the stream).
func (s *Server) logPage(ctx context.Context, q *logQuery, limit int, before, after uint64) (*logPage, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, s.cfg.LogStream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	page := &logPage{Events: []json.RawMessage{}}
	if info.State.Msgs == 0 {
		return page, nil
	}
	filter := s.subjects.LogWildcard()
	if q.Action != "" {
		filter = s.subjects.Log(q.Action)
	}
	type hit struct {
		seq  uint64
		data []byte
	}
	var hits []hit
	if after > 0 {
		// Forward from after+1: the oldest limit matches.
		start, end := max(after+1, first), min(after+logScanMax, last)
		if start > last {
			return page, nil
		}
		// One match more than the page tells whether a newer page exists.
		err = s.scan(ctx, st, filter, start, end, func(seq uint64, data []byte) bool {
			page.Scanned++
			if matchData(q, data) {
				hits = append(hits, hit{seq, data})
			}
			return len(hits) <= limit
		})
		if err != nil {
			return nil, err
		}
		full := len(hits) > limit
		if full {
			hits = hits[:limit]
		}
		for i := len(hits) - 1; i >= 0; i-- {
			page.Events = append(page.Events, hits[i].data)
		}
		if len(hits) > 0 {
			page.Older = hits[0].seq
			if full || end < last {
				page.Newer = hits[len(hits)-1].seq
			}
		} else {
			page.Older = start
			if end < last {
				page.Newer = end
			}
		}
		return page, nil
	}
	// Backward from before-1: the newest limit matches of the window.
	end := last
	if before > 0 {
		if before <= first {
			return page, nil
		}
		end = min(before-1, last)
	}
	start := first
	if end >= logScanMax && end-logScanMax+1 > first {
		start = end - logScanMax + 1
	}
	more := false
	err = s.scan(ctx, st, filter, start, end, func(seq uint64, data []byte) bool {
		page.Scanned++
		if matchData(q, data) {
			if len(hits) == limit {
				hits, more = hits[1:], true
			}
			hits = append(hits, hit{seq, data})
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	for i := len(hits) - 1; i >= 0; i-- {
		page.Events = append(page.Events, hits[i].data)
	}
	switch {
	case len(hits) > 0 && (more || start > first):
		page.Older = hits[0].seq
	case len(hits) == 0 && start > first:
		page.Older = start
	}
	if end < last {
		page.Newer = end
		if len(hits) > 0 {
			page.Newer = hits[len(hits)-1].seq
		}
	}
	return page, nil
}

func matchData(q *logQuery, data []byte) bool {
	var e events.LogEvent
	return json.Unmarshal(data, &e) == nil && q.match(&e)
}

// scan reads the messages of st on filter with sequences start..end in
// order and hands each to f until it returns false (admin.ScanStream,
// which tokens.usage reads the log stream with too).
func (s *Server) scan(ctx context.Context, st jetstream.Stream, filter string, start, end uint64, f func(uint64, []byte) bool) error {
	return admin.ScanStream(ctx, st, filter, start, end, f)
}
