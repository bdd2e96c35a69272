package admin_test

import (
	"encoding/json"
	"testing"

	"customactions/auth"
)

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustDecode(t *testing.T, s string) *auth.Token {
	t.Helper()
	var tok auth.Token
	if err := json.Unmarshal([]byte(s), &tok); err != nil {
		t.Fatal(err)
	}
	return &tok
}
