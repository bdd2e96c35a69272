// Package webui is the browser admin of the engine: the Authentication
// settings page (tokens: create, test, save, edit, delete), the Logs tab
// (log events newest first, filters, live following, a trigger's result)
// and the circuit breakers. It is served from the consumer binary on the
// metrics port, behind a login with the admin password, and its pages are
// embedded with embed, so nothing but Go is needed to run it.
//
// Token requests go straight to consumer.Admin.Handle, the same code that
// answers the NATS admin requests, so the page and the CLI cannot disagree.
package webui
