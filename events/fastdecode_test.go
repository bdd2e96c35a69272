package events

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

var fastSeeds = []string{
	`{"id":"trg_1","action_id":"create-order","source":"inbox","token_id":"shop","request":{"method":"POST","url":"https://api.example.com/orders","headers":{"Content-Type":"application/json"},"body":"{\"sku\":\"A-1\"}","timeout_ms":10000},"context":{"conversation_id":"123","n":[1,2.5e3,true,null]}}`,
	` { "id" : "x" , "mode":"live", "extra":[{"a":-0.5E+2},"s\u00e9",false], "request": {"method":"GET","url":"http://h/"} } `,
	`{"id":"dup","id":"dup2","request":{"headers":{"A":"1"}},"request":{"headers":{"B":"2"},"timeout_ms":-0}}`,
	`{"ID":"case"}`, `{"id":null}`, `{"request":null}`, `{"context":null}`, `{"context":"str"}`, `null`, `[]`, `{}`,
	`{"id":"\ud83d\ude00 \ud800"}`, `{"id":"tab\tinside"}`, `{"request":{"timeout_ms":1.5}}`, `{"request":{"timeout_ms":01}}`,
	`{"id":"é\u00e9\/\b\f\n\r\t\\\""}`, "{\"id\":\"\xff\"}", `{"i\u0064":"escaped key"}`, `{"id":"x"} trailing`,
	`{"request":{"headers":{"A":1}}}`, `{"request":{"timeout_ms":99999999999999999999}}`,
	// Numbers from outside (issue 13): both paths must agree on each.
	`{"request":{"timeout_ms":9223372036854775807}}`, `{"request":{"timeout_ms":9223372036854775808}}`,
	`{"request":{"timeout_ms":18446744073709}}`, `{"request":{"timeout_ms":-9223372036854775808}}`,
	`{"request":{"timeout_ms":1e3}}`, `{"request":{"timeout_ms":1E+3}}`, `{"request":{"timeout_ms":1e400}}`,
	`{"request":{"timeout_ms":-0}}`, `{"request":{"timeout_ms":-9223372036854775809}}`, `{"request":{"timeout_ms":10000000000000000000}}`, `{"request":{"timeout_ms":-01}}`, `{"request":{"timeout_ms":-0.0}}`, `{"request":{"timeout_ms":-}}`, `{"request":{"timeout_ms":"10"}}`,
	// Text that encoding/json would silently turn into U+FFFD.
	`{"id":"\udc00"}`, `{"id":"\ud800\u0041"}`, `{"x":"\ud800"}`, `{"context":{"a":"\udfff"}}`, "{\"context\":{\"a\":\"\xc3\"}}",
	// Nesting (issue 13): at the limit, one past it, and unclosed.
	`{"x":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `}`,
	`{"x":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`,
	`{"context":` + strings.Repeat(`{"a":`, MaxDepth-1) + "1" + strings.Repeat("}", MaxDepth-1) + `}`,
	`{"context":` + strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth) + `}`,
	`{"request":{"x":` + strings.Repeat("[", 200) + `}}`,
	// Header members (checkFast allows 3), repeated names counted again.
	`{"request":{"headers":{"A":"1","B":"2","C":"3"}}}`, `{"request":{"headers":{"A":"1","B":"2","C":"3","D":"4"}}}`,
	`{"request":{"headers":{"A":"1","A":"2","A":"3","A":"4"}}}`, `{"request":{"headers":{"A":"1","B":"2"}},"request":{"headers":{"C":"3","D":"4"}}}`,
	`{"request":{"headers":{"A":"1","B":"2"},"headers":{"C":"3","D":"4"}}}`, `{"request":{"headers":{"A":"{:}","B":"\":"}}}`,
	// end_user (contract §11): plain, repeated, merged, odd spellings.
	`{"id":"e","end_user":{"id":"contact_1"}}`, `{"end_user":{"id":"a"},"end_user":{"x":1}}`, `{"end_user":{"id":"a","id":"b"}}`,
	`{"end_user":null}`, `{"end_user":{}}`, `{"end_user":"a"}`, `{"End_User":{"id":"a"}}`, `{"end_user":{"ID":"a"}}`, `{"end_user":{"id":7}}`,
	`{"end_user":{"id":"a","more":{"deep":[1,{"x":null}]}}}`,
}

func TestFastDecodeSeeds(t *testing.T) {
	fast := 0
	for _, s := range fastSeeds {
		if checkFast(t, []byte(s)) {
			fast++
		}
	}
	if fast < 3 {
		t.Errorf("only %d seeds took the fast path", fast)
	}
}

// checkFast asserts that when the fast path decodes, the slow path
// (checkWellFormed, then encoding/json) accepts the input too and gives the
// same trigger. When the fast path declines, Decode takes the slow path,
// so the two never disagree on what Decode accepts.
func checkFast(t *testing.T, data []byte) bool {
	t.Helper()
	var got Trigger
	if !fastDecode(data, &got, 3) {
		return false
	}
	if err := checkWellFormed(data); err != nil {
		t.Fatalf("fast path accepted %q, the slow path refuses it: %v", data, err)
	}
	if err := checkHeaderCount(data, 3); err != nil {
		t.Fatalf("fast path accepted %q, the slow path refuses it: %v", data, err)
	}
	var want Trigger
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", data, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fast path on %q:\n got  %+v\n want %+v", data, got, want)
	}
	return true
}

func FuzzFastDecode(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkFast(t, data) })
}
