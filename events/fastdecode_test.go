package events

import (
	"encoding/json"
	"reflect"
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

// checkFast asserts that when the fast path decodes, encoding/json agrees.
func checkFast(t *testing.T, data []byte) bool {
	t.Helper()
	var got Trigger
	if !fastDecode(data, &got) {
		return false
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
