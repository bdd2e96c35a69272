package consumer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/events"
	"customactions/internal/natstest"
)

func TestConfigNamesFollowPrefix(t *testing.T) {
	contract := Config{Prefix: "actions", TriggerStream: "ACTIONS_TRIGGERS", ResultStream: "ACTIONS_RESULTS", LogStream: "ACTIONS_LOGS",
		DeadStream: "ACTIONS_DEAD", TokensBucket: "action_tokens", FetchedBucket: "action_fetched_tokens",
		BreakerBucket: "action_breakers", Durable: "actions-consumer"}
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"default prefix", Config{}, contract},
		{"contract prefix", Config{Prefix: "actions"}, contract},
		{"other prefix", Config{Prefix: "acme"}, Config{Prefix: "acme", TriggerStream: "ACME_TRIGGERS", ResultStream: "ACME_RESULTS",
			LogStream: "ACME_LOGS", DeadStream: "ACME_DEAD", TokensBucket: "acme_action_tokens", FetchedBucket: "acme_action_fetched_tokens",
			BreakerBucket: "acme_action_breakers", Durable: "acme-consumer"}},
		{"prefix action does not land on the default buckets", Config{Prefix: "action"}, Config{Prefix: "action",
			TriggerStream: "ACTION_TRIGGERS", ResultStream: "ACTION_RESULTS", LogStream: "ACTION_LOGS", DeadStream: "ACTION_DEAD",
			TokensBucket: "action_action_tokens", FetchedBucket: "action_action_fetched_tokens", BreakerBucket: "action_action_breakers",
			Durable: "action-consumer"}},
		{"explicit names are kept", Config{Prefix: "acme", TriggerStream: "T", TokensBucket: "tok", Durable: "d"}, Config{Prefix: "acme",
			TriggerStream: "T", ResultStream: "ACME_RESULTS", LogStream: "ACME_LOGS", DeadStream: "ACME_DEAD", TokensBucket: "tok",
			FetchedBucket: "acme_action_fetched_tokens", BreakerBucket: "acme_action_breakers", Durable: "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.WithDefaults()
			names := func(c Config) []string {
				return []string{c.Prefix, c.TriggerStream, c.ResultStream, c.LogStream, c.DeadStream, c.TokensBucket, c.FetchedBucket,
					c.BreakerBucket, c.Durable}
			}
			if !slices.Equal(names(got), names(tt.want)) {
				t.Errorf("names = %v, want %v", names(got), names(tt.want))
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestValidatePrefix(t *testing.T) {
	tests := []struct {
		prefix  string
		wantErr bool
	}{
		{"actions", false},
		{"acme", false},
		{"My-Co_2", false},
		{strings.Repeat("p", 64), false},
		{"", true},
		{"acme.prod", true},
		{"acme*", true},
		{">", true},
		{"ac me", true},
		{"acme\n", true},
		{strings.Repeat("p", 65), true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.prefix), func(t *testing.T) {
			err := ValidatePrefix(tt.prefix)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ValidatePrefix(%q) = %v, want error %v", tt.prefix, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "no dots, wildcards or spaces") {
				t.Errorf("message %q does not say what is allowed", err)
			}
			if tt.prefix == "" {
				return // WithDefaults makes it "actions"
			}
			verr := Config{Prefix: tt.prefix}.WithDefaults().Validate()
			if (verr != nil) != tt.wantErr {
				t.Errorf("Config.Validate with prefix %q = %v, want error %v", tt.prefix, verr, tt.wantErr)
			}
		})
	}
}

// Two installations with different prefixes on one server each execute
// their own triggers; the second one's Setup does not take the first one's
// subjects away.
func TestTwoInstallationsOnOneServer(t *testing.T) {
	srv := natstest.Start(t)
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	a := newHarnessOn(t, srv, Config{Prefix: "actions"})
	a.start()
	b := newHarnessOn(t, srv, Config{Prefix: "acme"})
	b.start()

	const n = 5
	for i := range n {
		for _, h := range []*harness{a, b} {
			h.trigger(&events.Trigger{ID: fmt.Sprintf("%s-%d", h.cfg.Prefix, i), ActionID: "act", Source: events.SourceInbox,
				Request: events.Request{Method: "GET", URL: api.URL + "/" + h.cfg.Prefix}})
		}
	}
	for _, h := range []*harness{a, b} {
		got := h.results(n, 15*time.Second)
		if len(got) != n {
			t.Fatalf("%s: %d results, want %d", h.cfg.Prefix, len(got), n)
		}
		for _, r := range got {
			if r.Status != events.StatusSucceeded || !strings.HasPrefix(r.TriggerID, h.cfg.Prefix+"-") {
				t.Errorf("%s: result %+v", h.cfg.Prefix, r)
			}
		}
		s, err := h.js.Stream(context.Background(), h.cfg.TriggerStream)
		if err != nil {
			t.Fatal(err)
		}
		if subj := s.CachedInfo().Config.Subjects; !slices.Equal(subj, []string{h.cfg.Prefix + ".trigger.>"}) {
			t.Errorf("stream %s subjects = %v", h.cfg.TriggerStream, subj)
		}
	}
	if calls := api.Calls(); len(calls) != 2*n {
		t.Errorf("API got %d calls, want %d", len(calls), 2*n)
	}
	if a.cfg.TriggerStream == b.cfg.TriggerStream || a.cfg.TokensBucket == b.cfg.TokensBucket || a.cfg.Durable == b.cfg.Durable {
		t.Errorf("installations share names: %+v and %+v", a.cfg, b.cfg)
	}
}

// Setup never changes the subjects of a stream it did not create: a stream
// of its name with other subjects, or another stream holding its subjects,
// fails Setup with a message naming the stream, its subjects and what was
// expected. A stream with its own subjects is still updated.
func TestSetupStreamSubjects(t *testing.T) {
	tests := []struct {
		name     string
		existing jetstream.StreamConfig
		wantErr  []string // substrings of the error; none: Setup succeeds
	}{
		{"same name, foreign subjects", jetstream.StreamConfig{Name: "ACTIONS_TRIGGERS", Subjects: []string{"acme.trigger.>"},
			Retention: jetstream.WorkQueuePolicy},
			[]string{"ACTIONS_TRIGGERS", "[acme.trigger.>]", "expects [actions.trigger.>]"}},
		{"same name, more subjects", jetstream.StreamConfig{Name: "ACTIONS_RESULTS", Subjects: []string{"actions.result.>", "other.>"}},
			[]string{"ACTIONS_RESULTS", "[actions.result.> other.>]", "expects [actions.result.>]"}},
		{"another stream holds the subjects", jetstream.StreamConfig{Name: "OLD_LOGS", Subjects: []string{"actions.log.>"}},
			[]string{"ACTIONS_LOGS", "OLD_LOGS", "actions.log.>"}},
		{"own stream with another max age", jetstream.StreamConfig{Name: "ACTIONS_RESULTS", Subjects: []string{"actions.result.>"},
			MaxAge: time.Hour}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Start(t)
			_, js := natstest.Connect(t, srv)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := js.CreateStream(ctx, tt.existing); err != nil {
				t.Fatal(err)
			}
			cfg := Config{}.WithDefaults()
			start := time.Now()
			_, err := Setup(ctx, js, cfg)
			s, serr := js.Stream(ctx, tt.existing.Name)
			if serr != nil {
				t.Fatal(serr)
			}
			have := s.CachedInfo().Config
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Setup: %v", err)
				}
				if have.MaxAge != cfg.RetentionMaxAge {
					t.Errorf("max age of its own stream = %s, want it updated to %s", have.MaxAge, cfg.RetentionMaxAge)
				}
				return
			}
			if err == nil {
				t.Fatalf("Setup succeeded; want it to refuse the stream")
			}
			if !errors.Is(err, ErrStreamConflict) {
				t.Errorf("error %v does not match ErrStreamConflict", err)
			}
			var perm *backoff.PermanentError
			if !errors.As(err, &perm) {
				t.Errorf("error %v is not permanent for a backoff retry loop", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if !slices.Equal(have.Subjects, tt.existing.Subjects) {
				t.Errorf("subjects of %s changed to %v", tt.existing.Name, have.Subjects)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Setup took %s to refuse; want at once", d)
			}
		})
	}
}
