package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/events"
)

// Bounds of tokens.usage.
const (
	UsageEvents  = 50    // events returned at most
	UsageScanMax = 20000 // newest log events read at most
)

// Usage is the reply of tokens.usage: the newest log events of calls
// signed with a token, newest first.
type Usage struct {
	TokenID string       `json:"token_id"`
	Events  []UsageEvent `json:"events"`
	// Scanned is how many log events were read; Complete is true when
	// they were all the log stream holds (else older uses may exist).
	Scanned  int  `json:"scanned"`
	Complete bool `json:"complete"`
}

// UsageEvent is one log event of a token's use.
type UsageEvent struct {
	Time      string `json:"time"`
	Event     string `json:"event"`
	Level     string `json:"level"`
	ActionID  string `json:"action_id"`
	TriggerID string `json:"trigger_id,omitempty"`
	Message   string `json:"message"`
}

// TokenUsage returns the newest UsageEvents log events with token_id id
// among the newest UsageScanMax events of the log stream. The token need
// not exist any more.
func (a *Service) TokenUsage(ctx context.Context, id string) (*Usage, error) {
	if a.js == nil {
		return nil, errorf(CodeInternal, "the log stream is not available from this service")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := a.js.Stream(ctx, a.logStream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	u := &Usage{TokenID: id, Events: []UsageEvent{}}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		u.Complete = true
		return u, nil
	}
	start := first
	if last >= UsageScanMax && last-UsageScanMax+1 > first {
		start = last - UsageScanMax + 1
	}
	u.Complete = start == first
	// The token id is not in the subject: a cheap look for it comes
	// before decoding.
	needle, _ := json.Marshal(id)
	needle = append([]byte(`"token_id":`), needle...)
	var hits []UsageEvent
	err = ScanStream(ctx, st, events.NewSubjects(a.prefix).LogWildcard(), start, last, func(_ uint64, data []byte) bool {
		u.Scanned++
		if !bytes.Contains(data, needle) {
			return true
		}
		var e events.LogEvent
		if json.Unmarshal(data, &e) != nil || e.TokenID != id {
			return true
		}
		if len(hits) == UsageEvents {
			hits = hits[1:]
		}
		hits = append(hits, UsageEvent{Time: e.Time, Event: e.Event, Level: e.Level, ActionID: e.ActionID, TriggerID: e.TriggerID, Message: e.Message})
		return true
	})
	if err != nil {
		return nil, err
	}
	for i := len(hits) - 1; i >= 0; i-- {
		u.Events = append(u.Events, hits[i])
	}
	return u, nil
}

// ScanStream reads the messages of st on filter with sequences start..end
// in order and hands each to f until it returns false. The web UI's Logs
// tab pages with it too.
func ScanStream(ctx context.Context, st jetstream.Stream, filter string, start, end uint64, f func(seq uint64, data []byte) bool) error {
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter},
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start})
	if err != nil {
		return err
	}
	for {
		batch, err := c.FetchNoWait(500)
		if err != nil {
			return err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			if meta.Sequence.Stream > end || !f(meta.Sequence.Stream, m.Data()) {
				return nil
			}
		}
		if got == 0 {
			return nil
		}
	}
}
