package webui

// The end users' pages of the connect flow (contract §11): the link a bot
// sends, which redirects to the provider, and the callback the provider
// sends the browser back to. They need no login: the single-use state is
// the capability.

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"customactions/auth"
)

// connectPage is the whole page an end user sees; every value is escaped
// by html/template, nothing from the request is shown but through it.
var connectPage = template.Must(template.New("connect").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title></head>
<body><main><h1 id="title">{{.Title}}</h1><p id="message">{{.Message}}</p></main></body></html>
`))

type pageData struct{ Title, Message string }

// RegisterConnect serves c's pages on mux: GET /connect/{state} redirects
// to the provider, GET /oauth/callback stores the connection and tells the
// end user it worked (or why not).
func RegisterConnect(mux *http.ServeMux, c *auth.Connector, log *slog.Logger) {
	mux.HandleFunc("GET "+auth.ConnectPath+"{state}", func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		to, err := c.AuthorizeURL(r.Context(), r.PathValue("state"))
		if err != nil {
			connectFailed(w, log, err)
			return
		}
		http.Redirect(w, r, to, http.StatusFound)
	})
	mux.HandleFunc("GET "+auth.CallbackPath, func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		done, err := c.Complete(r.Context(), r.URL.Query())
		if err != nil {
			connectFailed(w, log, err)
			return
		}
		log.Info("connection made through the browser", "token_id", done.TokenID, "end_user_id", done.EndUserID)
		writePage(w, http.StatusOK, pageData{Title: "Connected", Message: "Your account is connected. You can close this page and go back to the conversation."})
	})
}

// noStore keeps the pages (whose URLs hold a state or a code) out of
// caches and referrers.
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
}

func connectFailed(w http.ResponseWriter, log *slog.Logger, err error) {
	var ce *auth.ConnectError
	if !errors.As(err, &ce) {
		log.Warn("connect link", "err", err)
		writePage(w, http.StatusServiceUnavailable, pageData{Title: "Not connected", Message: "The connection service is unavailable. Try again in a minute."})
		return
	}
	status := http.StatusBadRequest
	switch ce.Kind {
	case auth.ConnectLinkUsed, auth.ConnectLinkExpired:
		status = http.StatusGone
	case auth.ConnectAccessDenied:
		status = http.StatusOK // the user's own choice, not an error of the page
	case auth.ConnectExchangeFailed:
		status = http.StatusBadGateway
	case auth.ConnectUnavailable:
		status = http.StatusServiceUnavailable
	}
	attrs := []any{"kind", ce.Kind}
	if ce.Err != nil {
		attrs = append(attrs, "err", ce.Err)
	}
	log.Info("connect refused", attrs...)
	writePage(w, status, pageData{Title: "Not connected", Message: ce.Message})
}

func writePage(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	var b strings.Builder
	_ = connectPage.Execute(&b, d)
	_, _ = w.Write([]byte(b.String()))
}
