package oauthtest

import (
	"html/template"
	"net/http"
	"strings"

	"github.com/ory/fosite"
)

// AllowRedirectURI registers one more redirect URI for the client, for a
// test that learns its callback URL after the server started.
func (s *Server) AllowRedirectURI(uri string) {
	s.store.allowRedirectURI(uri)
}

// authorize is the authorize endpoint. GET validates the request and shows
// the login page; POST, the page's form, validates it again and redirects
// to the redirect URI with a code and the state, or with access_denied
// when the user denied. A wrong password shows the page again.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var username, password string
	var deny bool
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		username, password = r.PostForm.Get("username"), r.PostForm.Get("password")
		deny = r.PostForm.Get("deny") != ""
		// fosite keeps the form of the request: keep the password out of it.
		for _, k := range []string{"username", "password", "deny"} {
			r.PostForm.Del(k)
			r.Form.Del(k)
		}
	}
	ar, err := s.provider.NewAuthorizeRequest(ctx, r)
	if err == nil {
		err = checkPKCE(ar)
	}
	if err != nil {
		s.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	page := loginPage{ClientID: ar.GetClient().GetID(), Scopes: strings.Join(ar.GetRequestedScopes(), " "),
		Action: "/oauth2/authorize?" + r.URL.RawQuery, Username: username}
	switch {
	case r.Method == http.MethodGet:
		s.authorizeCalls.Add(1)
		page.write(w)
		return
	case deny:
		s.provider.WriteAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("The user denied the request."))
		return
	}
	if _, err := s.store.Authenticate(ctx, username, password); err != nil {
		page.Error = "Wrong username or password."
		page.write(w)
		return
	}
	for _, scope := range ar.GetRequestedScopes() {
		ar.GrantScope(scope)
	}
	for _, aud := range ar.GetRequestedAudience() {
		ar.GrantAudience(aud)
	}
	resp, err := s.provider.NewAuthorizeResponse(ctx, ar, &fosite.DefaultSession{Subject: username, Username: username})
	if err != nil {
		s.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	s.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// checkPKCE refuses a request without an S256 code challenge before the
// login page, as RFC 7636 §4.4.1 asks of the authorize endpoint. fosite
// applies the same rule, but only when it issues the code, after the login.
func checkPKCE(ar fosite.AuthorizeRequester) error {
	form := ar.GetRequestForm()
	switch {
	case form.Get("code_challenge") == "":
		return fosite.ErrInvalidRequest.WithHint("Clients must include a code_challenge when performing the authorize code flow, but it is missing.")
	case form.Get("code_challenge_method") != "S256":
		return fosite.ErrInvalidRequest.WithHint("Clients must use code_challenge_method=S256, plain is not allowed.")
	}
	return nil
}

// loginPage is the login form. Action keeps the query of the authorize
// request, so that the POST carries it again.
type loginPage struct {
	ClientID, Scopes, Action string
	Username, Error          string
}

func (p loginPage) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = loginTemplate.Execute(w, p)
}

var loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>Sign in</h1>
<p>{{.ClientID}} asks for: <span id="scopes">{{.Scopes}}</span></p>
{{if .Error}}<p id="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<p><label for="username">Username</label> <input id="username" name="username" value="{{.Username}}" autocomplete="username"></p>
<p><label for="password">Password</label> <input id="password" name="password" type="password" autocomplete="current-password"></p>
<p><button id="login" type="submit">Sign in</button> <button id="deny" type="submit" name="deny" value="1">Deny</button></p>
</form>
</body>
</html>
`))
