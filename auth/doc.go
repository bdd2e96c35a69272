// Package auth holds the tokens that authenticate action requests: their
// types and validation, their storage in a JetStream KV bucket (secret fields
// encrypted at rest when a key is set), the fetching of an HTTP Request
// token from the customer's auth endpoint, and its refresh.
//
// The consumer asks a Resolver for the header of a token before a call, and
// on a 401 asks it to refresh an HTTP token once. A Manager keeps the most
// recently fetched token of every HTTP token in a KV bucket shared by all
// replicas, follows it with a KV watch so the hot path makes no KV round trip,
// and coordinates refreshes through a KV lease so that one token rotation
// costs one auth request across every replica.
//
// The package does not log: it returns errors (*AuthError keeps the auth
// endpoint's status and a capped, masked body) and lets the caller publish
// log events. Secret values are of type Secret, which masks itself when
// printed, logged or encoded to JSON.
package auth
