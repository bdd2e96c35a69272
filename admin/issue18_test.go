package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/admin"
	"customactions/consumer"
	"customactions/events"
	"customactions/internal/natstest"
	"customactions/internal/oauthtest"
)

// TestTokensForget: tokens.forget drops an HTTP token's fetched token, so
// the next call fetches a new one; a text token has none, an oauth2 token
// is refused (its refresh token would go with it) and its connection is
// kept; a missing token is not_found.
func TestTokensForget(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.adm.Handle(ctx, "tokens.save", []byte(f.httpToken(f.auth.URL))); err != nil {
		t.Fatal(err)
	}
	tok, err := f.store.Get(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	first, _, err := f.mgr.Current(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	again, _, _ := f.mgr.Current(ctx, tok)
	if again.Token.Reveal() != first.Token.Reveal() {
		t.Fatal("the fetched token is not cached: the test proves nothing")
	}
	calls := f.calls.Load()

	reply, err := f.adm.Handle(ctx, "tokens.forget", []byte(`{"id":"shop"}`))
	if err != nil {
		t.Fatalf("tokens.forget: %v", err)
	}
	if got := string(mustJSON(t, reply)); got != `{"had_fetched":true,"ok":true}` {
		t.Errorf("reply %s", got)
	}
	if f.mgr.Peek("shop") != nil {
		t.Error("the fetched token is still cached")
	}
	if _, err := f.res.Fetched.Get(ctx, "token.shop"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("the shared record is still there: %v", err)
	}
	next, _, err := f.mgr.Current(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if next.Token.Reveal() == first.Token.Reveal() || f.calls.Load() != calls+1 {
		t.Errorf("after forget: token %s (was %s), %d auth requests (want 1)", next.Token.Reveal(), first.Token.Reveal(), f.calls.Load()-calls)
	}

	if _, err := f.adm.Handle(ctx, "tokens.save", []byte(`{"id":"plain","type":"text","value":"v-123456"}`)); err != nil {
		t.Fatal(err)
	}
	srv := oauthtest.New(t, oauthtest.Options{})
	if _, err := f.adm.Handle(ctx, "tokens.save", []byte(oauthJSON(srv, "refresh_token", srv.MintRefreshToken(t)))); err != nil {
		t.Fatal(err)
	}
	before, _, _ := f.mgr.OAuth2View(ctx, "crm")
	refreshes := srv.RefreshCalls()
	for _, tc := range []struct {
		name, body, code, msg string
	}{
		{"text", `{"id":"plain"}`, admin.CodeBadRequest, "text token: there is no fetched token"},
		{"oauth2", `{"id":"crm"}`, admin.CodeBadRequest, "cannot be dropped without discarding its refresh token"},
		{"missing", `{"id":"nope"}`, admin.CodeNotFound, `"nope" does not exist`},
		{"bad id", `{"id":"a.b"}`, admin.CodeBadRequest, "must match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.adm.Handle(ctx, "tokens.forget", []byte(tc.body))
			if code(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("tokens.forget %s: %v (code %q), want %s with %q", tc.body, err, code(err), tc.code, tc.msg)
			}
		})
	}
	after, ok, err := f.mgr.OAuth2View(ctx, "crm")
	if err != nil || !ok || after.RefreshTokenPreview == "" || after.RefreshTokenPreview != before.RefreshTokenPreview ||
		after.AccessTokenPreview != before.AccessTokenPreview || srv.RefreshCalls() != refreshes {
		t.Errorf("the oauth2 connection changed: %+v -> %+v (ok %v, %v), %d refreshes", before, after, ok, err, srv.RefreshCalls()-refreshes)
	}
}

// jsFixture is an admin Service with the log stream and the dead letters
// of an installation with the default prefix.
type jsFixture struct {
	adm *admin.Service
	js  jetstream.JetStream
	cfg consumer.Config
}

func newJSFixture(t *testing.T) *jsFixture {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := consumer.Config{}.WithDefaults()
	if _, err := consumer.Setup(t.Context(), js, cfg); err != nil {
		t.Fatal(err)
	}
	dead := admin.NewDeadLetters(cfg.Prefix, deadStore{js, cfg}, js)
	return &jsFixture{adm: admin.New(cfg.Prefix, nil, nil, nil, nil, nil, admin.WithLogStream(js, cfg.LogStream), admin.WithDeadLetters(dead)), js: js, cfg: cfg}
}

// deadStore adapts consumer's dead-letter functions, as cmd/consumer does.
type deadStore struct {
	js  jetstream.JetStream
	cfg consumer.Config
}

func (d deadStore) List(ctx context.Context) ([]admin.DeadLetter, error) {
	list, err := consumer.ListDeadLetters(ctx, d.js, d.cfg)
	var out []admin.DeadLetter
	for _, l := range list {
		out = append(out, admin.DeadLetter{Seq: l.Seq, TriggerID: l.TriggerID, Subject: l.Subject, Reason: l.Reason, Data: l.Data})
	}
	return out, err
}

func (d deadStore) Replay(ctx context.Context, seq uint64) (admin.DeadLetter, error) {
	l, err := consumer.ReplayDeadLetter(ctx, d.js, d.cfg, seq)
	return admin.DeadLetter{Seq: l.Seq, TriggerID: l.TriggerID, Subject: l.Subject}, err
}

// TestTokensUsage: tokens.usage answers the newest 50 log events signed
// with the token, newest first, with action, trigger, time and event, and
// none of another token.
func TestTokensUsage(t *testing.T) {
	f := newJSFixture(t)
	ctx := t.Context()
	pub := func(action, trigger, token string, n int) {
		e := events.LogEvent{Time: fmt.Sprintf("2026-11-26T12:00:%02d.000Z", n%60), Level: "info", Event: events.EventActionSucceeded,
			ActionID: action, TriggerID: trigger, TokenID: token, Message: "ok"}
		data, _ := json.Marshal(e)
		if _, err := f.js.Publish(ctx, "actions.log."+action, data); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 70 {
		pub("create-order", fmt.Sprintf("t%d", i), "shop", i)
		pub("other", fmt.Sprintf("o%d", i), "shopping", i) // a token whose id starts the same
	}
	pub("refund", "last", "shop", 99)
	pub("refund", "none", "", 99)

	reply, err := f.adm.Handle(ctx, "tokens.usage", []byte(`{"id":"shop"}`))
	if err != nil {
		t.Fatal(err)
	}
	u := reply.(*admin.Usage)
	if len(u.Events) != admin.UsageEvents || !u.Complete || u.Scanned != 142 {
		t.Fatalf("%d events, complete %v, scanned %d", len(u.Events), u.Complete, u.Scanned)
	}
	if e := u.Events[0]; e.ActionID != "refund" || e.TriggerID != "last" || e.Event != events.EventActionSucceeded || e.Time != "2026-11-26T12:00:39.000Z" {
		t.Errorf("newest %+v", e)
	}
	if e := u.Events[1]; e.TriggerID != "t69" {
		t.Errorf("second %+v, want t69", e)
	}
	if e := u.Events[49]; e.TriggerID != "t21" {
		t.Errorf("oldest %+v, want t21", e)
	}
	for _, e := range u.Events {
		if e.ActionID == "other" {
			t.Errorf("an event of another token: %+v", e)
		}
	}
	reply, err = f.adm.Handle(ctx, "tokens.usage", []byte(`{"id":"unused"}`))
	if err != nil || len(reply.(*admin.Usage).Events) != 0 {
		t.Errorf("usage of an unused token: %+v %v", reply, err)
	}
	if _, err := admin.New("actions", nil, nil, nil, nil, nil).Handle(ctx, "tokens.usage", []byte(`{"id":"shop"}`)); code(err) != admin.CodeInternal {
		t.Errorf("without the log stream: %v", err)
	}
}

// TestDeadLetterRequests: dead.list lists the dead letters; dead.rerun
// publishes a copy as a test run (source test, a new id) and keeps the
// dead letter; dead.replay publishes it to its original subject and
// removes it; an unknown seq is not_found.
func TestDeadLetterRequests(t *testing.T) {
	f := newJSFixture(t)
	ctx := t.Context()
	trigger := `{"id":"trg-1","action_id":"create-order","source":"inbox","request":{"method":"POST","url":"https://api.example.com/o","body":"{}"},"context":{"c":"1"},"extra":true}`
	m := &nats.Msg{Subject: "actions.dead.create-order", Data: []byte(trigger), Header: nats.Header{}}
	m.Header.Set(consumer.HeaderDeadReason, "result publish timed out")
	m.Header.Set(consumer.HeaderDeadSubject, "actions.trigger.inbox.create-order")
	m.Header.Set(consumer.HeaderDeadSeq, "7")
	if _, err := f.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	// Nothing consumes the triggers stream here: what landed stays.
	triggers, err := f.js.Stream(ctx, f.cfg.TriggerStream)
	if err != nil {
		t.Fatal(err)
	}
	last := func(subject string) *jetstream.RawStreamMsg {
		t.Helper()
		msg, err := triggers.GetLastMsgForSubject(ctx, subject)
		if err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		return msg
	}

	reply, err := f.adm.Handle(ctx, "dead.list", nil)
	if err != nil {
		t.Fatal(err)
	}
	list := reply.(map[string]any)["dead_letters"].([]admin.DeadLetter)
	if len(list) != 1 || list[0].TriggerID != "trg-1" || list[0].Reason != "result publish timed out" || list[0].Seq == 0 {
		t.Fatalf("dead.list: %+v", list)
	}
	if data := string(mustJSON(t, reply)); strings.Contains(data, "api.example.com") {
		t.Errorf("dead.list shows the trigger's data: %s", data)
	}
	seq := list[0].Seq

	rr, err := f.adm.Handle(ctx, "dead.rerun", []byte(fmt.Sprintf(`{"seq":%d}`, seq)))
	if err != nil {
		t.Fatal(err)
	}
	rerun := rr.(admin.Rerun)
	got := last("actions.trigger.test.create-order")
	var tr map[string]any
	_ = json.Unmarshal(got.Data, &tr)
	if tr["source"] != "test" || tr["id"] != rerun.ID || rerun.ID == "trg-1" ||
		got.Header.Get(jetstream.MsgIDHeader) != rerun.ID || tr["extra"] != true || tr["context"].(map[string]any)["c"] != "1" ||
		tr["request"].(map[string]any)["url"] != "https://api.example.com/o" || rerun.ActionID != "create-order" {
		t.Errorf("re-run %+v published %s", rerun, got.Data)
	}
	if reply, _ := f.adm.Handle(ctx, "dead.list", nil); len(reply.(map[string]any)["dead_letters"].([]admin.DeadLetter)) != 1 {
		t.Error("a re-run removed the dead letter")
	}

	if _, err := f.adm.Handle(ctx, "dead.replay", []byte(fmt.Sprintf(`{"seq":%d}`, seq))); err != nil {
		t.Fatal(err)
	}
	if got := last("actions.trigger.inbox.create-order"); string(got.Data) != trigger {
		t.Errorf("replay published %s", got.Data)
	}
	if reply, _ := f.adm.Handle(ctx, "dead.list", nil); len(reply.(map[string]any)["dead_letters"].([]admin.DeadLetter)) != 0 {
		t.Error("a replay kept the dead letter")
	}
	for _, tc := range []struct{ verb, body, code, msg string }{
		{"dead.replay", fmt.Sprintf(`{"seq":%d}`, seq), admin.CodeNotFound, "there is no dead letter"},
		{"dead.rerun", fmt.Sprintf(`{"seq":%d}`, seq), admin.CodeNotFound, "there is no dead letter"},
		{"dead.replay", `{}`, admin.CodeBadRequest, "seq must be"},
		{"dead.replay", `{"seq":"x"}`, admin.CodeBadRequest, "request is not valid"},
		{"dead.list", `{"x":1}`, admin.CodeBadRequest, `unknown field "x"`},
	} {
		_, err := f.adm.Handle(ctx, tc.verb, []byte(tc.body))
		if code(err) != tc.code || !strings.Contains(fmt.Sprint(err), tc.msg) {
			t.Errorf("%s %s: %v, want %s with %q", tc.verb, tc.body, err, tc.code, tc.msg)
		}
	}
	_, err = f.adm.Handle(ctx, "dead.replay", []byte(fmt.Sprintf(`{"seq":%d}`, seq)))
	if !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("not found does not wrap jetstream.ErrMsgNotFound: %v", err)
	}
	if _, err := admin.New("actions", nil, nil, nil, nil, nil).Handle(ctx, "dead.list", nil); code(err) != admin.CodeInternal {
		t.Errorf("without dead letters: %v", err)
	}
}
