// Package auth holds the tokens that authenticate action requests and owns
// the authenticated call: token types and their validation, their storage
// in a JetStream KV bucket (secret fields encrypted at rest when a key is
// set), the fetching of an HTTP Request token from the customer's auth
// endpoint, and its refresh.
//
// The consumer hands each call to an Authenticator with the token id of
// the trigger (Authenticator.Do); the Authenticator signs every attempt
// with the token's header, and after a 401 refreshes an HTTP token and
// retries once, the way x/oauth2's Transport hides the kind of credential
// from its caller. The caller gets the outcome (attempts, whether a
// refreshed token was used, the auth request it made) or a typed error
// (ErrTokenNotFound, ErrTokenUnreadable, ErrUnsupportedType,
// *RefreshError); it never sees a token's kind or value.
//
// A Manager keeps the most recently fetched token of every HTTP token in a
// KV bucket shared by all replicas. Its mechanisms live one per file: the
// watch cache (cache.go) so the hot path makes no KV round trip, the
// in-process single flight (flight.go), the cross-replica refresh lease
// (lease.go), the shared failure record that ends other replicas' waits
// (failure.go) and the stored record (record.go). One token rotation costs
// one auth request across every replica. Store keeps the token
// configurations; Fetcher makes auth requests.
//
// The package does not log: it returns errors (*AuthError keeps the auth
// endpoint's status and a capped body with the token's secrets redacted)
// and reports proactive refreshes to a callback of the call that started
// them. Secret values are of type Secret, which masks itself when printed,
// logged or encoded to JSON; Redactor removes known secrets, in the
// encodings endpoints echo them, from text shown to people.
package auth
