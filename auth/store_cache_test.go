package auth

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/natstest"
)

// TestStoreFollowsOtherReplicas: a replica holds the tokens it used, at
// most its bound, and drops one that another replica saved again or
// deleted.
func TestStoreFollowsOtherReplicas(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Start(t))
	kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "tokens"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s1, s2 := NewStore(kv, nil), NewStore(kv, nil, WithStoreCache(10))
	for _, s := range []*Store{s1, s2} {
		if err := s.Watch(ctx); err != nil {
			t.Fatal(err)
		}
	}
	text := func(id, v string) *Token {
		tok := &Token{ID: id, Type: TypeText, Value: Secret(v), Header: "Authorization", Prefix: "Bearer "}
		tok.Normalize()
		return tok
	}
	for i := range 100 {
		if _, err := s1.Put(t.Context(), text(fmt.Sprint("t", i), fmt.Sprint("value-", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		tok, err := s2.Get(t.Context(), fmt.Sprint("t", i))
		if err != nil || tok.Value.Reveal() != fmt.Sprint("value-", i) {
			t.Fatalf("t%d: %v %v", i, tok, err)
		}
	}
	if n := s2.Cached(); n > 10 {
		t.Fatalf("%d tokens held, bound 10", n)
	}
	if _, err := s2.Get(t.Context(), "t99"); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Put(t.Context(), text("t99", "changed-value")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		tok, err := s2.Get(t.Context(), "t99")
		return err == nil && tok.Value.Reveal() == "changed-value"
	})
	if err := s1.Delete(t.Context(), "t99"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, err := s2.Get(t.Context(), "t99"); return errors.Is(err, ErrTokenNotFound) })
}
