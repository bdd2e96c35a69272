// Package webui is the browser admin of the engine: the Authentication
// settings page (tokens: create, test, save, edit, delete; Refresh drops
// an HTTP token's fetched token, Used by shows its newest uses in the
// logs), the Dead letters page (list, Replay, Re-run as test), the Logs tab
// (log events newest first, searched by action, level, event, trigger,
// token, status, a context value and a time range on the server, in pages
// of 100 with older/newer cursors, exported as JSON lines, followed live;
// a trigger's result, with Re-run as test when the trigger is a dead
// letter) and the Health page: the circuit breakers (until
// when an open one stays open, reset) and the limits an admin sets per
// action (rate, burst, max concurrent: listed, set, edited, deleted). Times show relative ("3 min ago"), the exact time on hover. It is served from the consumer binary on the
// metrics port, behind a login with the admin password, and its pages are
// embedded with embed, so nothing but Go is needed to run it.
//
// Token, breaker, limits and dead-letter requests go straight to admin.Service.Handle, the same
// code that answers the NATS admin requests, so the page and the CLI
// cannot disagree.
//
// Security: a login starts a session named by an HttpOnly, SameSite=Strict
// cookie (Secure over TLS or behind a proxy that sends X-Forwarded-Proto:
// https). With WithSessionStore the signing key and the sessions are kept
// in a KV bucket (the breakers bucket, under keys with a dot that the
// breaker skips), so every replica accepts a login and a restart keeps it;
// without it they live in memory. Every request checks its session in the
// store, and logout deletes it there, so a copied cookie stops working on
// every replica. API calls
// also need an X-Requested-With header (CSRF), five failed logins from an
// address lock it out for a minute, and every response carries a
// Content-Security-Policy without inline script, X-Frame-Options: DENY,
// X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer
// (SecureHeaders). RequireSession puts other pages of the port behind the
// same login.
package webui
