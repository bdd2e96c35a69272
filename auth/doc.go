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
// ErrReauthorizationRequired, *RefreshError); it never sees a token's kind
// or value.
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
// An oauth2 token (contract §10; files oauth2*.go) speaks OAuth 2.0 to its
// token endpoint with golang.org/x/oauth2 (client_credentials, and refresh
// requests with the same client authentication, scopes and extra_params),
// over the Fetcher's client. Its connection (access token, current refresh
// token, a generation counting the access tokens, whether the endpoint
// rotated the last refresh token, the refresh intent and the health) is one
// record, oauth2.<token id> in the fetched-token bucket, sealed, followed by
// the same watch; the hot path reads it from memory. A saved token holds no
// refresh token: Manager.SaveOAuth2, the test-before-save, spends a pasted
// one in one refresh and keeps the rotated one in the record only, so that
// no refresh token is ever in two places.
//
// Rotation with fencing. A refresh token is sent at most once, across
// replicas and crashes:
//   - The refresher writes an intent into the record by compare-and-set
//     on its revision: its holder, its start and a hash of the refresh
//     token it will send. The intent is the refresh lease (it lapses after
//     WithLeaseTTL); a separate lease key would be a second truth to keep
//     in step with the record, so there is none. Others wait for the
//     record to change.
//   - The token request must end within three quarters of the TTL. Its
//     outcome (new access and refresh token, or the health it leads to) is
//     written by compare-and-set on the intent's revision, and only then
//     is the new access token used. If the record moved meanwhile (the
//     intent lapsed and another replica acted on it, or an admin saved a
//     new connection), nothing is written and the new tokens are dropped:
//     a lapsed holder cannot overwrite a newer record.
//   - A replica that finds a lapsed intent cannot tell whether its refresh
//     token reached the endpoint, so when the endpoint rotates refresh
//     tokens (or it is not known yet) it does not send it again: the token
//     becomes reauthorization_required ("a refresh was interrupted after
//     the refresh token was sent; reconnect or paste a new refresh token").
//     An endpoint that answered the last refresh without a new refresh
//     token keeps it valid, and then the lapsed refresh is made again; so
//     is a client_credentials one.
//   - The holder itself never sends a refresh token twice: transient
//     failures are retried only when the endpoint answered 5xx or 429 or
//     the request was never written (an httptrace hook says so); a request
//     that was written and got no answer ends like a lapsed intent.
//
// Health (ok, degraded, reauthorization_required) lives in the same record,
// with the time of its last change and the last error (masked), so every
// replica and the admin views see it. The replica whose compare-and-set
// changes it calls the hook of Manager.OnHealthChange once. While a token
// needs reauthorization, Authenticator.Do returns an error wrapping
// ErrReauthorizationRequired without calling the token endpoint or the
// action. invalid_grant, invalid_client, unauthorized_client and every
// other 4xx answer lead to it; 5xx, 429 and network errors to degraded.
// After an expired status (oauth2.expired_statuses, default 401) Do
// refreshes once and retries once.
//
// The package does not log: it returns errors (*AuthError keeps the auth
// endpoint's status and a capped body with the token's secrets redacted)
// and reports proactive refreshes to a callback of the call that started
// them. Secret values are of type Secret, which masks itself when printed,
// logged or encoded to JSON; Redactor removes known secrets, in the
// encodings endpoints echo them, from text shown to people.
package auth
