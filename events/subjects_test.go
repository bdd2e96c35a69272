package events

import (
	"regexp"
	"strings"
	"testing"
)

// FuzzValidID checks the hand-written id check against the pattern the
// contract states.
func FuzzValidID(f *testing.F) {
	ref := regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	for _, s := range []string{"", "a", "create-order", "shop_api-2", "a.b", "a b", "é", "a\n", strings.Repeat("x", 128), strings.Repeat("x", 129), "*", ">"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidID(s), ref.MatchString(s); got != want {
			t.Errorf("ValidID(%q) = %v, the pattern says %v", s, got, want)
		}
	})
}
