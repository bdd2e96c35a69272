package events

import (
	"errors"
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

// TestDecodeMalformedSubject: a trigger on a subject that is not
// <prefix>.trigger.<source>.<action_id> is refused, and the trigger Decode
// returns names only a valid action id and source (the body's when the
// subject has none), so its rejection goes to a well-formed result
// subject (it was built from the invalid action id and never answered).
func TestDecodeMalformedSubject(t *testing.T) {
	s := NewSubjects("")
	body := func(actionID, source string) []byte {
		return []byte(`{"id":"t1","action_id":"` + actionID + `","source":"` + source + `","request":{"method":"GET","url":"https://x.example/"},"context":{"c":1}}`)
	}
	tests := []struct {
		name, subject        string
		data                 []byte
		wantAction, wantSrc  string
		wantErr, wantSubject string
	}{
		{"extra token", "actions.trigger.inbox.a.b", body("a", "inbox"), "a", "inbox", "is not actions.trigger.<source>.<action_id>", "actions.result.a"},
		{"extra token, body names a.b", "actions.trigger.inbox.a.b", body("a.b", "inbox"), "", "inbox", "is not actions.trigger", "actions.result._invalid"},
		{"no action id", "actions.trigger.inbox", body("a", "inbox"), "a", "inbox", "is not actions.trigger", "actions.result.a"},
		{"no action id, bad json", "actions.trigger.inbox", []byte(`{"id":`), "", "", "not a valid trigger JSON", "actions.result._invalid"},
		{"empty source", "actions.trigger..a", body("a", ""), "a", "", "is not actions.trigger", "actions.result.a"},
		{"wildcard action", "actions.trigger.inbox.*", body("*", "inbox"), "", "inbox", `action id "*" must match`, "actions.result._invalid"},
		{"full wildcard action", "actions.trigger.inbox.>", body(">", "inbox"), "", "inbox", `action id ">" must match`, "actions.result._invalid"},
		{"space in action", "actions.trigger.inbox.a b", body("a b", "inbox"), "", "inbox", "must match", "actions.result._invalid"},
		{"unknown source", "actions.trigger.email.a", body("a", "email"), "a", "", `source "email" must be one of inbox, bot, test`, "actions.result.a"},
		{"wildcard source", "actions.trigger.*.a", body("a", "*"), "a", "", "must be one of", "actions.result.a"},
		{"not a trigger", "other.subject", body("a", "bot"), "a", "bot", "is not a trigger subject", "actions.result.a"},
		{"mismatch keeps the subject's", "actions.trigger.bot.x", body("a", "inbox"), "x", "bot", `does not match the subject's action id "x"`, "actions.result.x"},
		{"too big", "actions.trigger.inbox.a.b", append(body("a", "inbox"), make([]byte, 300<<10)...), "", "", "more than the maximum", "actions.result._invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := Decode(s, tc.subject, tc.data, Limits{})
			var inv *InvalidError
			if !errors.As(err, &inv) || !strings.Contains(inv.Message, tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if tr.ActionID != tc.wantAction || tr.Source != tc.wantSrc {
				t.Errorf("action id %q, source %q, want %q, %q", tr.ActionID, tr.Source, tc.wantAction, tc.wantSrc)
			}
			if got := s.ResultFor(tr.ActionID); got != tc.wantSubject {
				t.Errorf("ResultFor = %q, want %q", got, tc.wantSubject)
			}
		})
	}
}

func TestResultFor(t *testing.T) {
	s := NewSubjects("acme")
	for id, want := range map[string]string{"create-order": "create-order", "": "_invalid", "a.b": "_invalid", "*": "_invalid",
		">": "_invalid", "a b": "_invalid", strings.Repeat("x", 129): "_invalid"} {
		if got := s.ResultFor(id); got != "acme.result."+want {
			t.Errorf("ResultFor(%q) = %q, want acme.result.%s", id, got, want)
		}
		if got := s.LogFor(id); got != "acme.log."+want {
			t.Errorf("LogFor(%q) = %q, want acme.log.%s", id, got, want)
		}
	}
}

// TestPartitionSubjects: a trigger of a partition is parsed as the
// contract's subject it was mapped from; anything else is left alone.
func TestPartitionSubjects(t *testing.T) {
	s := NewSubjects("")
	from, to := s.PartitionMapping(3)
	if from != "actions.trigger.*.*" || to != "actions.partition.{{partition(3,2)}}.trigger.{{wildcard(1)}}.{{wildcard(2)}}" {
		t.Fatalf("mapping %q -> %q", from, to)
	}
	if got := s.PartitionWildcard(2); got != "actions.partition.2.>" {
		t.Fatalf("wildcard %q", got)
	}
	tests := []struct {
		name, subject, want string
		wantSource          string
		wantErr             bool
	}{
		{"partition", "actions.partition.2.trigger.bot.order-1", "actions.trigger.bot.order-1", "bot", false},
		{"two digits", "actions.partition.17.trigger.inbox.a", "actions.trigger.inbox.a", "inbox", false},
		{"contract subject", "actions.trigger.test.a", "actions.trigger.test.a", "test", false},
		{"not a number", "actions.partition.x.trigger.bot.a", "actions.partition.x.trigger.bot.a", "", true},
		{"empty partition", "actions.partition..trigger.bot.a", "actions.partition..trigger.bot.a", "", true},
		{"not a trigger", "actions.partition.1.result.a", "actions.partition.1.result.a", "", true},
		{"malformed inside", "actions.partition.1.trigger.bot.a.b", "actions.trigger.bot.a.b", "", true},
		{"other prefix", "acme.partition.1.trigger.bot.a", "acme.partition.1.trigger.bot.a", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.Unpartition(tc.subject); got != tc.want {
				t.Errorf("Unpartition(%q) = %q, want %q", tc.subject, got, tc.want)
			}
			source, _, err := s.ParseTrigger(tc.subject)
			if (err != nil) != tc.wantErr || source != tc.wantSource {
				t.Errorf("ParseTrigger(%q) = %q, %v; want source %q, error %v", tc.subject, source, err, tc.wantSource, tc.wantErr)
			}
		})
	}
}
