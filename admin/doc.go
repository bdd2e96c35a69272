// Package admin manages what admins change at run time: tokens (test,
// save, get, list, delete, forget the fetched token, recent usage from
// the log stream, import), circuit breakers (list, reset), limits, and
// dead letters (list, replay, re-run as a test; DeadLetters, which
// `consumer dead` uses too). It
// is the one implementation behind three front ends: the admin requests of
// the contract over NATS (Subscribe, any replica answers in a queue group),
// the web UI (which calls Handle), and the CLI's start-up import
// (ACTIONS_TOKENS_FILE, ImportTokens).
//
// Every change goes through the same steps: a token is decoded strictly,
// normalized and validated; masked secrets sent back by an edit keep their
// stored values; an HTTP token must pass its test request before it is
// saved; and a saved token whose type or auth configuration changed drops
// its cached fetched token on every replica.
//
// Errors are plain errors; those an admin can act on are *Error with a
// code (ErrBadRequest, ErrInvalidToken, ...) that the NATS and HTTP front
// ends put in the contract's error reply.
package admin
