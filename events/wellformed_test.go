package events

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// triggerWith returns a valid trigger on actions.trigger.inbox.a with the
// given JSON spliced in: id, the request's members after method and url,
// and extra top-level members.
func triggerWith(id, request, extra string) []byte {
	if request != "" {
		request = "," + request
	}
	if extra != "" {
		extra = "," + extra
	}
	return []byte(`{"id":` + id + `,"action_id":"a","source":"inbox","request":{"method":"GET","url":"https://x.example/"` + request + `}` + extra + `}`)
}

// slowPath makes the fast decoder decline data (a member name with an
// escape), so Decode takes checkWellFormed and encoding/json.
func slowPath(data []byte) []byte {
	return append([]byte(`{"\u0078":0,`), data[1:]...)
}

// nest returns n levels of arrays, objects or both around 1, closed or cut
// off before the closing brackets.
func nest(kind string, n int, closed bool) string {
	var open, close string
	switch kind {
	case "arrays":
		open, close = "[", "]"
	case "objects":
		open, close = `{"a":`, "}"
	default: // mixed
		open, close = `[{"a":`, "}]"
		n /= 2
	}
	s := strings.Repeat(open, n) + "1"
	if closed {
		s += strings.Repeat(close, n)
	}
	return s
}

func decodeInvalid(t *testing.T, data []byte) (*Trigger, *InvalidError) {
	t.Helper()
	tr, err := Decode(NewSubjects(""), "actions.trigger.inbox.a", data, Limits{MaxTriggerBytes: 1 << 20})
	var inv *InvalidError
	if err != nil && !errors.As(err, &inv) {
		t.Fatalf("error %v is not an *InvalidError", err)
	}
	return tr, inv
}

// TestDecodeRefusesDeepNesting: nesting anywhere in a trigger, closed or
// not, is refused with one clear message, on both decoding paths (issue 13:
// the fast decoder recursed without a limit and accepted it).
func TestDecodeRefusesDeepNesting(t *testing.T) {
	positions := []struct {
		name string
		at   func(v string) []byte
	}{
		{"whole trigger", func(v string) []byte { return []byte(v) }},
		{"top-level unknown field", func(v string) []byte { return triggerWith(`"t"`, "", `"x":`+v) }},
		{"id", func(v string) []byte { return triggerWith(v, "", "") }},
		{"request unknown field", func(v string) []byte { return triggerWith(`"t"`, `"x":`+v, "") }},
		{"request.headers value", func(v string) []byte { return triggerWith(`"t"`, `"headers":{"A":`+v+`}`, "") }},
		{"request.timeout_ms", func(v string) []byte { return triggerWith(`"t"`, `"timeout_ms":`+v, "") }},
		{"context member", func(v string) []byte { return triggerWith(`"t"`, "", `"context":{"c":`+v+`}`) }},
		{"array item", func(v string) []byte { return triggerWith(`"t"`, "", `"x":[1,"s",`+v+`]`) }},
	}
	for _, pos := range positions {
		for _, kind := range []string{"arrays", "objects", "mixed"} {
			for _, closed := range []bool{true, false} {
				for _, n := range []int{MaxDepth + 2, 130_000} {
					data := pos.at(nest(kind, n, closed))
					name := fmt.Sprintf("%s/%s/closed=%v/%d", pos.name, kind, closed, n)
					for path, in := range map[string][]byte{"fast": data, "slow": slowPath(data)} {
						if pos.name == "whole trigger" && path == "slow" {
							continue
						}
						t.Run(name+"/"+path, func(t *testing.T) {
							_, inv := decodeInvalid(t, in)
							if inv == nil || !strings.Contains(inv.Message, "JSON nested deeper than 64 levels") {
								t.Errorf("err = %v, want JSON nested deeper than 64 levels", inv)
							}
						})
					}
				}
			}
		}
	}
}

// TestDecodeDepthLimitIsExact: a context reaching level MaxDepth is kept
// verbatim on both paths, one level more is refused naming the context
// (issue 13: a context deeper than encoding/json allows became null).
func TestDecodeDepthLimitIsExact(t *testing.T) {
	for _, kind := range []string{"arrays", "objects"} {
		// The trigger is level 1, the context object level 2.
		ok := `{"c":` + nest(kind, MaxDepth-2, true) + `}`
		deep := `{"c":` + nest(kind, MaxDepth-1, true) + `}`
		for path, wrap := range map[string]func([]byte) []byte{"fast": func(b []byte) []byte { return b }, "slow": slowPath} {
			t.Run(kind+"/"+path, func(t *testing.T) {
				tr, inv := decodeInvalid(t, wrap(triggerWith(`"t"`, "", `"context":`+ok)))
				if inv != nil || string(tr.Context) != ok {
					t.Errorf("context at the limit: err %v, context %.40s", inv, tr.Context)
				}
				_, inv = decodeInvalid(t, wrap(triggerWith(`"t"`, "", `"context":`+deep)))
				if inv == nil || inv.Message != `JSON nested deeper than 64 levels (in "context")` {
					t.Errorf("context past the limit: err %v", inv)
				}
			})
		}
	}
}

// TestDecodeCostIsBoundedByInput: no trigger of up to 256 KiB makes
// Decode allocate more than a few times its own size or grow its stack, on either
// path (issue 13: 130,000 levels of nesting left 32 MiB of stack per
// decode, 80 MB at the peak; 26,000 empty headers built a 3 MB map before
// being refused).
func TestDecodeCostIsBoundedByInput(t *testing.T) {
	fill := func(unit string, room int) string { return strings.Repeat(unit, room/len(unit)) }
	const room = 250 << 10
	headers := func() string {
		var b strings.Builder
		for i := 0; b.Len() < room; i++ {
			fmt.Fprintf(&b, `"%x":"",`, i)
		}
		return strings.TrimSuffix(b.String(), ",")
	}()
	tests := map[string][]byte{
		"headers":       triggerWith(`"t"`, `"headers":{`+headers+`}`, ""),
		"same header":   triggerWith(`"t"`, `"headers":{`+strings.TrimSuffix(fill(`"A":"",`, room), ",")+`}`, ""),
		"requests":      triggerWith(`"t"`, "", strings.TrimSuffix(fill(`"request":{"headers":{"A":""}},`, room), ",")),
		"ids":           triggerWith(`"t"`, "", strings.TrimSuffix(fill(`"id":"abcdefgh",`, room), ",")),
		"contexts":      triggerWith(`"t"`, "", strings.TrimSuffix(fill(`"context":{"a":1},`, room), ",")),
		"number":        triggerWith(`"t"`, `"timeout_ms":`+fill("9", room), ""),
		"escapes":       triggerWith(`"t"`, `"body":"`+fill(`\u00e9`, room)+`"`, ""),
		"array":         triggerWith(`"t"`, "", `"x":[`+fill("0,", room)+`0]`),
		"deep arrays":   triggerWith(`"t"`, "", `"x":`+nest("arrays", 130_000, true)),
		"deep objects":  triggerWith(`"t"`, "", `"x":`+nest("objects", 50_000, true)),
		"deep cut off":  triggerWith(`"t"`, "", `"x":`+nest("mixed", 40_000, false)),
		"deep context":  triggerWith(`"t"`, "", `"context":`+nest("objects", 50_000, true)),
		"deep headers":  triggerWith(`"t"`, `"headers":`+nest("objects", 50_000, true), ""),
		"deep request":  triggerWith(`"t"`, `"x":`+nest("arrays", 130_000, true), ""),
		"whole trigger": []byte(nest("arrays", 260_000, false)),
	}
	for name, data := range tests {
		for path, in := range map[string][]byte{"fast": data, "slow": slowPath(data)} {
			t.Run(name+"/"+path, func(t *testing.T) {
				var heap uint64
				stack := decodeStack(func() {
					var before, after runtime.MemStats
					runtime.ReadMemStats(&before)
					decodeInvalid(t, in)
					runtime.ReadMemStats(&after)
					heap = after.TotalAlloc - before.TotalAlloc
				})
				// encoding/json refusing a 250 KB number makes three
				// copies of it for its error: linear, and the most.
				if limit := uint64(4*len(in) + 64<<10); heap > limit {
					t.Errorf("decoding %d bytes allocated %d bytes, more than %d", len(in), heap, limit)
				}
				if stack > 256<<10 {
					t.Errorf("decoding left %d KiB of stack in use", stack>>10)
				}
			})
		}
	}
}

// TestDecodeRefusesWhatJSONWouldReplace: text that encoding/json silently
// turns into U+FFFD is refused wherever it is (issue 13: an invalid
// Idempotency-Key was sent as U+FFFD).
func TestDecodeRefusesWhatJSONWouldReplace(t *testing.T) {
	const bad, lone = "\"a\xffb\"", `"a\ud800b"`
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"invalid UTF-8 in id", triggerWith(bad, "", ""), "not valid UTF-8 (bad byte at offset"},
		{"invalid UTF-8 in a header name", triggerWith(`"t"`, "\"headers\":{\"X-\xc3\":\"v\"}", ""), "not valid UTF-8"},
		{"invalid UTF-8 in a header value", triggerWith(`"t"`, `"headers":{"X":`+bad+`}`, ""), "not valid UTF-8"},
		{"invalid UTF-8 in the url", []byte("{\"id\":\"t\",\"action_id\":\"a\",\"source\":\"inbox\",\"request\":{\"method\":\"GET\",\"url\":\"https://x.example/\xed\xa0\x80\"}}"), "not valid UTF-8"},
		{"invalid UTF-8 in the body", triggerWith(`"t"`, `"body":`+bad, ""), "not valid UTF-8"},
		{"invalid UTF-8 in the context", triggerWith(`"t"`, "", `"context":{"c":`+bad+`}`), "not valid UTF-8"},
		{"invalid UTF-8 in an unknown field", triggerWith(`"t"`, "", `"x":`+bad), "not valid UTF-8"},
		{"invalid UTF-8 in a member name", triggerWith(`"t"`, "", "\"\xff\":1"), "not valid UTF-8"},
		{"lone high surrogate in id", triggerWith(lone, "", ""), `the escape \ud800 at offset`},
		{"lone low surrogate in id", triggerWith(`"\udc00"`, "", ""), `the escape \udc00 at offset`},
		{"reversed pair in id", triggerWith(`"\udc00\ud800"`, "", ""), `the escape \udc00 at offset`},
		{"high surrogate then a letter", triggerWith(`"\ud800\u0041"`, "", ""), `the escape \ud800 at offset`},
		{"lone surrogate in a header name", triggerWith(`"t"`, `"headers":{"X\ud800":"v"}`, ""), "surrogate"},
		{"lone surrogate in a header value", triggerWith(`"t"`, `"headers":{"Idempotency-Key":`+lone+`}`, ""), "surrogate"},
		{"lone surrogate in token_id", triggerWith(`"t"`, "", `"token_id":`+lone), "surrogate"},
		{"lone surrogate in the body", triggerWith(`"t"`, `"body":`+lone, ""), "surrogate"},
		{"lone surrogate in the context", triggerWith(`"t"`, "", `"context":{"c":`+lone+`}`), "surrogate"},
		{"lone surrogate at the end", triggerWith(`"t"`, "", `"x":"\ud800"`), "surrogate"},
		{"control character in id", triggerWith(`"a\r\nX-Injected: 1"`, "", ""), "must not contain control characters"},
		{"pair in id", triggerWith(`"\ud83d\ude00"`, "", ""), ""},
		{"escaped backslash before u", triggerWith(`"a\\ud800"`, "", ""), ""},
		{"U+FFFD itself in id", triggerWith(`"\ufffd �"`, "", ""), ""},
		{"non-ASCII header value", triggerWith(`"t"`, `"headers":{"X":"café"}`, ""), ""},
	}
	for _, tc := range tests {
		for path, in := range map[string][]byte{"fast": tc.data, "slow": slowPath(tc.data)} {
			t.Run(tc.name+"/"+path, func(t *testing.T) {
				tr, inv := decodeInvalid(t, in)
				switch {
				case tc.wantErr == "" && inv != nil:
					t.Errorf("refused: %v", inv)
				case tc.wantErr != "" && (inv == nil || !strings.Contains(inv.Message, tc.wantErr)):
					t.Errorf("err = %v (id %q), want %q", inv, tr.ID, tc.wantErr)
				}
			})
		}
	}
	t.Run("messages", func(t *testing.T) {
		for data, want := range map[string]string{
			string(triggerWith(bad, "", "")):  "trigger is not valid UTF-8 (bad byte at offset 8)",
			string(triggerWith(lone, "", "")): `the escape \ud800 at offset 8 is half of a UTF-16 surrogate pair, not a character`,
		} {
			if _, inv := decodeInvalid(t, []byte(data)); inv == nil || inv.Message != want {
				t.Errorf("err = %v, want %q", inv, want)
			}
		}
	})
}

// FuzzDecodeDepth builds a trigger with nesting of any depth at any
// position and checks that it is refused with the depth message when it
// passes MaxDepth (and never accepted by the fast path then), and, when
// closed, only then. Its seeds run as an ordinary test.
func FuzzDecodeDepth(f *testing.F) {
	for _, n := range []uint32{0, 1, MaxDepth - 3, MaxDepth - 2, MaxDepth - 1, MaxDepth, MaxDepth + 1, 10_001, 130_000} {
		for pos := range uint8(8) {
			f.Add(n, pos, uint8(n%3), n%2 == 0)
		}
	}
	kinds := []string{"arrays", "objects", "mixed"}
	f.Fuzz(func(t *testing.T, n uint32, pos, kind uint8, closed bool) {
		levels := int(n % 140_000)
		k := kinds[int(kind)%len(kinds)]
		if k == "mixed" {
			levels -= levels % 2
		}
		v := nest(k, levels, closed)
		// base is the level a value at the position sits at.
		var data []byte
		var base int
		switch pos % 8 {
		case 0:
			data, base = []byte(v), 0
		case 1:
			data, base = triggerWith(`"t"`, "", `"x":`+v), 1
		case 2:
			data, base = triggerWith(v, "", ""), 1
		case 3:
			data, base = triggerWith(`"t"`, `"x":`+v, ""), 2
		case 4:
			data, base = triggerWith(`"t"`, `"headers":{"A":`+v+`}`, ""), 3
		case 5:
			data, base = triggerWith(`"t"`, "", `"context":{"c":`+v+`}`), 2
		case 6:
			data, base = triggerWith(`"t"`, "", `"x":[1,`+v+`]`), 2
		case 7:
			data, base = slowPath(triggerWith(`"t"`, "", `"context":{"c":`+v+`}`)), 2
		}
		tooDeep := base+levels > MaxDepth
		if tooDeep {
			var tr Trigger
			if fastDecode(data, &tr, 64) {
				t.Fatalf("the fast path accepted %d levels", base+levels)
			}
		}
		_, inv := decodeInvalid(t, data)
		// Cut off, the nest leaves the trigger's own objects after it one
		// level deeper: only too deep is sure to be refused for depth.
		gotDepthErr := inv != nil && strings.Contains(inv.Message, "nested deeper than")
		if gotDepthErr != tooDeep && (tooDeep || closed) {
			t.Fatalf("%d levels at position %d: err %v", base+levels, pos%8, inv)
		}
		// A closed nest in a place that takes any JSON is accepted.
		if anyValue := pos%8 == 1 || pos%8 == 3 || pos%8 >= 5; anyValue && closed && !tooDeep && inv != nil {
			t.Fatalf("%d levels at position %d refused: %v", base+levels, pos%8, inv)
		}
	})
}
