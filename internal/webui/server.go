package webui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"customactions/admin"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"customactions/events"
)

//go:embed static
var static embed.FS

// Admin answers admin requests; *admin.Service satisfies it. Errors an
// admin can act on are *admin.Error.
type Admin interface {
	Handle(ctx context.Context, verb string, data []byte) (any, error)
}

// Config of the UI.
type Config struct {
	Password      string // the admin password; the UI is off when empty
	Prefix        string // subject prefix ("actions")
	LogStream     string // "ACTIONS_LOGS"
	ResultStream  string // "ACTIONS_RESULTS"
	SessionMaxAge time.Duration
}

// Server serves the UI under /ui/.
type Server struct {
	cfg      Config
	admin    Admin
	js       jetstream.JetStream
	subjects events.Subjects
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions

	lock lockout // failed logins by client address
}

// Option changes an optional dependency of the Server.
type Option func(*Server)

// WithClock makes the server read the time from now (tests move it instead
// of sleeping); the default is time.Now.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// New returns the UI server.
func New(cfg Config, admin Admin, js jetstream.JetStream, log *slog.Logger, opts ...Option) (*Server, error) {
	if cfg.Password == "" {
		return nil, errors.New("the web UI needs an admin password")
	}
	if cfg.SessionMaxAge <= 0 {
		cfg.SessionMaxAge = 12 * time.Hour
	}
	if cfg.LogStream == "" {
		cfg.LogStream = events.DefaultLogStream
	}
	if cfg.ResultStream == "" {
		cfg.ResultStream = events.DefaultResultStream
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, admin: admin, js: js, subjects: events.NewSubjects(cfg.Prefix), log: log, now: time.Now,
		sessions: &sessions{store: newMemStore(), key: key}, lock: &memLockout{m: map[string][]time.Time{}}}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Register adds the UI's routes to mux; every response carries
// SecureHeaders.
func (s *Server) Register(mux *http.ServeMux) {
	sub, _ := fs.Sub(static, "static")
	files := http.FileServerFS(sub)
	handle := func(pattern string, h http.Handler) { mux.Handle(pattern, SecureHeaders(h)) }
	handle("GET /ui/", http.StripPrefix("/ui/", files))
	handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	handle("POST /ui/login", http.HandlerFunc(s.login))
	handle("POST /ui/logout", http.HandlerFunc(s.logout))
	handle("GET /ui/api/session", s.authed(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]bool{"ok": true}) }))
	handle("POST /ui/api/admin/{verb}", s.authed(s.adminRequest))
	handle("GET /ui/api/logs", s.authed(s.logs))
	handle("GET /ui/api/logs/follow", s.authed(s.follow))
	handle("GET /ui/api/result", s.authed(s.result))
	handle("POST /ui/api/trigger", s.authed(s.trigger))
}

// RequireSession serves h only to a logged-in admin (and, for a method
// other than GET or HEAD, only with the X-Requested-With header); others get
// 401. Its responses carry SecureHeaders. It puts other pages of the UI's
// port behind the same login (/debug/pprof/).
func (s *Server) RequireSession(h http.Handler) http.Handler {
	return SecureHeaders(s.authed(h.ServeHTTP))
}

// authed requires a valid session cookie and, against CSRF, the
// X-Requested-With header that only the page's own fetch calls send.
func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ok := false
		if c, err := r.Cookie(cookieName); err == nil {
			if ok, err = s.sessions.valid(r.Context(), c.Value, s.now()); err != nil {
				s.storeFailed(w, err)
				return
			}
		}
		if !ok {
			writeJSON(w, http.StatusUnauthorized, errBody("unauthorized", "log in first"))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Header.Get("X-Requested-With") != "actions-ui" {
			writeJSON(w, http.StatusForbidden, errBody("forbidden", "missing X-Requested-With"))
			return
		}
		h(w, r)
	}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	client := r.RemoteAddr
	if i := strings.LastIndexByte(client, ':'); i > 0 {
		client = client[:i]
	}
	now := s.now()
	recent, err := s.lock.recent(r.Context(), client, now)
	if err != nil {
		s.storeFailed(w, err)
		return
	}
	if recent >= maxLoginFailures {
		writeJSON(w, http.StatusTooManyRequests, errBody("too_many_attempts", "too many failed logins; wait a minute"))
		return
	}
	var req struct {
		Password string `json:"password"`
	}
	_ = json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req)
	if subtle.ConstantTimeCompare([]byte(req.Password), []byte(s.cfg.Password)) != 1 {
		if err := s.lock.fail(r.Context(), client, now); err != nil {
			s.log.Warn("record a failed web UI login", "client", client, "err", err)
		}
		s.log.Warn("web UI login failed", "client", client)
		writeJSON(w, http.StatusUnauthorized, errBody("unauthorized", "wrong password"))
		return
	}
	v, err := s.sessions.create(r.Context(), now, now.Add(s.cfg.SessionMaxAge))
	if err != nil {
		s.storeFailed(w, err)
		return
	}
	http.SetCookie(w, sessionCookie(r, v, int(s.cfg.SessionMaxAge.Seconds())))
	writeJSON(w, 200, map[string]bool{"ok": true})
}

// logout ends the session on the server, so a copy of its cookie no longer
// works either, and clears the cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		if err := s.sessions.end(r.Context(), c.Value); err != nil {
			s.storeFailed(w, err) // the session may still be live: keep the cookie
			return
		}
	}
	http.SetCookie(w, sessionCookie(r, "", -1))
	writeJSON(w, 200, map[string]bool{"ok": true})
}

// storeFailed answers 503 when the session store (KV) could not be reached.
func (s *Server) storeFailed(w http.ResponseWriter, err error) {
	s.log.Warn("web UI session store unreachable", "err", err)
	writeJSON(w, http.StatusServiceUnavailable, errBody("unavailable", "session store unreachable; try again"))
}

func (s *Server) adminRequest(w http.ResponseWriter, r *http.Request) {
	verb := r.PathValue("verb")
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeJSON(w, 400, errBody("bad_request", err.Error()))
		return
	}
	reply, err := s.admin.Handle(r.Context(), verb, body)
	if err != nil {
		writeJSON(w, 200, admin.ErrorReply(err))
		return
	}
	writeJSON(w, 200, reply)
}

// lastMessages reads up to n of the newest messages of stream on filter.
func (s *Server) lastMessages(ctx context.Context, stream, filter string, n int) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, err
	}
	var count uint64
	for _, c := range info.State.Subjects {
		count += c
	}
	if count == 0 {
		return nil, nil
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}}
	// Read at most the last scanWindow messages of the stream: the newest n
	// of the filter are among them unless the filter is very rare.
	const scanWindow = 20000
	if info.State.LastSeq > scanWindow {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, info.State.LastSeq-scanWindow
	}
	c, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for {
		batch, err := c.FetchNoWait(500)
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			out = append(out, m.Data())
		}
		if got == 0 {
			break
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}

// follow streams new log events as server-sent events.
func (s *Server) follow(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeJSON(w, 500, errBody("internal", "streaming unsupported"))
		return
	}
	filter := s.subjects.LogWildcard()
	if a := r.URL.Query().Get("action"); a != "" && events.ValidID(a) {
		filter = s.subjects.Log(a)
	}
	st, err := s.js.Stream(r.Context(), s.cfg.LogStream)
	if err != nil {
		writeJSON(w, 502, errBody("internal", err.Error()))
		return
	}
	c, err := st.OrderedConsumer(r.Context(), jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		writeJSON(w, 502, errBody("internal", err.Error()))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(200)
	fmt.Fprint(w, ": following\n\n")
	flusher.Flush()
	// The callback hands events to this handler, which alone writes to w:
	// nothing writes after the handler returned.
	incoming := make(chan []byte, 256)
	cc, err := c.Consume(func(m jetstream.Msg) {
		select {
		case incoming <- m.Data():
		default: // a slow browser misses events rather than blocking the consumer
		}
	})
	if err != nil {
		return
	}
	defer cc.Stop()
	keepAlive := time.NewTicker(20 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case data := <-incoming:
			fmt.Fprintf(w, "data: %s\n\n", data)
			flusher.Flush()
		case <-keepAlive.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			flusher.Flush()
		}
	}
}

// result finds the result of a trigger among the newest results of its
// action.
func (s *Server) result(w http.ResponseWriter, r *http.Request) {
	action, id := r.URL.Query().Get("action"), r.URL.Query().Get("trigger_id")
	if !events.ValidID(action) || id == "" {
		writeJSON(w, 400, errBody("bad_request", "give action and trigger_id"))
		return
	}
	msgs, err := s.lastMessages(r.Context(), s.cfg.ResultStream, s.subjects.Result(action), 5000)
	if err != nil {
		writeJSON(w, 502, errBody("internal", err.Error()))
		return
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		var res events.Result
		if json.Unmarshal(msgs[i], &res) == nil && res.TriggerID == id {
			writeJSON(w, 200, json.RawMessage(msgs[i]))
			return
		}
	}
	writeJSON(w, 404, errBody("not_found", "no result for that trigger yet"))
}

// trigger publishes a test trigger (source "test", like the Test button of
// an action editor) and returns its id.
func (s *Server) trigger(w http.ResponseWriter, r *http.Request) {
	var t events.Trigger
	if err := json.NewDecoder(io.LimitReader(r.Body, 256<<10)).Decode(&t); err != nil {
		writeJSON(w, 400, errBody("bad_request", "not a trigger: "+err.Error()))
		return
	}
	t.Source = events.SourceTest
	if t.ID == "" {
		t.ID = "ui_" + nuid.Next()
	}
	if !events.ValidID(t.ActionID) {
		writeJSON(w, 400, errBody("bad_request", "action_id must match ^[A-Za-z0-9_-]{1,128}$"))
		return
	}
	data, _ := json.Marshal(t)
	msg := &nats.Msg{Subject: s.subjects.Trigger(t.Source, t.ActionID), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, t.ID)
	if _, err := s.js.PublishMsg(r.Context(), msg); err != nil {
		writeJSON(w, 502, errBody("internal", "publish: "+err.Error()))
		return
	}
	writeJSON(w, 200, map[string]string{"id": t.ID, "action_id": t.ActionID})
}

func errBody(code, msg string) map[string]any {
	return map[string]any{"error": events.Error{Code: code, Message: msg}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
