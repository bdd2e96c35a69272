package kvcache

import (
	"fmt"
	"testing"
)

func TestKVCacheRefusesWhatAChangeOutdated(t *testing.T) {
	c := New[string](3)
	// A read of revision 5 that finishes after the watch reported
	// revision 6 of the same key is not kept.
	epoch := c.Begin()
	c.Invalidate("a", 6)
	if c.Add("a", "old", 5, epoch) {
		t.Fatal("a record older than a change seen meanwhile was kept")
	}
	if !c.Add("a", "new", 6, epoch) {
		t.Fatal("the changed record itself was refused")
	}
	// A change drops an older record, not a newer one.
	c.Invalidate("a", 6)
	if _, _, ok := c.Get("a"); !ok {
		t.Fatal("a change of the same revision dropped the record")
	}
	c.Invalidate("a", 7)
	if _, _, ok := c.Get("a"); ok {
		t.Fatal("a newer change left the record")
	}
	// The bound: a fourth key replaces one of three.
	for i, k := range []string{"x", "y", "z", "w"} {
		c.Put(k, k, uint64(10+i))
	}
	if c.Len() != 3 {
		t.Fatalf("%d records held, bound 3", c.Len())
	}
	// When the memory of changes fills up, reads begun before are refused.
	epoch = c.Begin()
	for i := range 4*3 + 1 {
		c.Invalidate(fmt.Sprint("k", i), 1)
	}
	if c.Add("late", "v", 100, epoch) {
		t.Fatal("a read begun before the memory of changes was cleared was kept")
	}
}
