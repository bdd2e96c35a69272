package auth

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/natstest"
)

func TestKVCacheRefusesWhatAChangeOutdated(t *testing.T) {
	c := newKVCache[string](3)
	// A read of revision 5 that finishes after the watch reported
	// revision 6 of the same key is not kept.
	epoch := c.begin()
	c.invalidate("a", 6)
	if c.add("a", "old", 5, epoch) {
		t.Fatal("a record older than a change seen meanwhile was kept")
	}
	if !c.add("a", "new", 6, epoch) {
		t.Fatal("the changed record itself was refused")
	}
	// A change drops an older record, not a newer one.
	c.invalidate("a", 6)
	if _, _, ok := c.get("a"); !ok {
		t.Fatal("a change of the same revision dropped the record")
	}
	c.invalidate("a", 7)
	if _, _, ok := c.get("a"); ok {
		t.Fatal("a newer change left the record")
	}
	// The bound: a fourth key replaces one of three.
	for i, k := range []string{"x", "y", "z", "w"} {
		c.put(k, k, uint64(10+i))
	}
	if c.len() != 3 {
		t.Fatalf("%d records held, bound 3", c.len())
	}
	// When the memory of changes fills up, reads begun before are refused.
	epoch = c.begin()
	for i := range 4*3 + 1 {
		c.invalidate(fmt.Sprint("k", i), 1)
	}
	if c.add("late", "v", 100, epoch) {
		t.Fatal("a read begun before the memory of changes was cleared was kept")
	}
}

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
