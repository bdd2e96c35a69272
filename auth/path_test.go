package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestPathExtract(t *testing.T) {
	body := []byte(`{"access_token":"abc","n":3600,"data":{"tokens":[{"value":"v0"},{"value":"v1"}]},"list":[["x","y"]],"empty":"","nul":null,"obj":{}}`)
	header := http.Header{"X-Token": {"from-header"}}
	tests := []struct {
		path    string
		want    string
		wantErr string
		missing bool
	}{
		{path: "access_token", want: "abc"},
		{path: "n", want: "3600"},
		{path: "data.tokens[1].value", want: "v1"},
		{path: "list[0][1]", want: "y"},
		{path: "header:X-Token", want: "from-header"},
		{path: "header:x-token", want: "from-header"},
		{path: "header:X-Other", missing: true, wantErr: "no X-Other header"},
		{path: "data.tokens[2].value", missing: true, wantErr: "has 2 items, no [2]"},
		{path: "data.nope", missing: true, wantErr: `no "nope" at data`},
		{path: "empty", missing: true, wantErr: "empty"},
		{path: "nul", missing: true, wantErr: "null"},
		{path: "obj", missing: true, wantErr: "not a string or a number"},
		{path: "access_token.x", missing: true, wantErr: "not an object or array"},
		{path: "data[0]", missing: true, wantErr: "is an object, not an array"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			p, err := ParsePath(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Extract(header, body)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.Is(err, ErrNotInResponse) != tc.missing {
					t.Fatalf("err = %v, want %q (not in response: %v)", err, tc.wantErr, tc.missing)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	p, _ := ParsePath("a")
	if _, err := p.Extract(nil, []byte("<html>")); err == nil || errors.Is(err, ErrNotInResponse) {
		t.Errorf("non-JSON body: err = %v", err)
	}
}

func TestParsePathErrors(t *testing.T) {
	for _, bad := range []string{"", "a..b", ".a", "a.", "a[", "a[x]", "a[-1]", "a[1]b", "a]b", "a.[0]", "header:", "header:bad name", "a[+1]"} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q) accepted a bad path", bad)
		}
	}
	for _, good := range []string{"a", "a.b.c", "a[0]", "[0].a", "a[0][1].b", "header:Authorization", "a_b-c.d$"} {
		if _, err := ParsePath(good); err != nil {
			t.Errorf("ParsePath(%q): %v", good, err)
		}
	}
}

// FuzzParsePath checks that parsing never panics and that a parsed dot
// path extracts what a second, naive implementation finds.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"access_token", "data.tokens[0].value", "a[0][1]", "header:X-Token", "[1]", "a..b", "a[", "é.ü[3]"} {
		f.Add(s, `{"access_token":"t","data":{"tokens":[{"value":"v"}]},"a":[[1,"z"]]}`)
	}
	f.Fuzz(func(t *testing.T, path, body string) {
		p, err := ParsePath(path)
		if err != nil {
			return
		}
		got, err := p.Extract(http.Header{}, []byte(body))
		if p.IsHeader() {
			return
		}
		want, ok := referenceWalk(path, body)
		if ok != (err == nil) || (ok && got != want) {
			t.Fatalf("path %q body %q: got %q, %v; reference %q, %v", path, body, got, err, want, ok)
		}
	})
}

func referenceWalk(path, body string) (string, bool) {
	var doc any
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return "", false
	}
	cur := doc
	for _, seg := range strings.Split(path, ".") {
		name := seg
		var idx []int
		if i := strings.IndexByte(seg, '['); i >= 0 {
			name = seg[:i]
			for _, part := range strings.Split(strings.TrimSuffix(seg[i+1:], "]"), "][") {
				n := 0
				for _, c := range part {
					n = n*10 + int(c-'0')
				}
				idx = append(idx, n)
			}
		}
		if name != "" {
			m, ok := cur.(map[string]any)
			if !ok {
				return "", false
			}
			if cur, ok = m[name]; !ok {
				return "", false
			}
		}
		for _, i := range idx {
			a, ok := cur.([]any)
			if !ok || i >= len(a) {
				return "", false
			}
			cur = a[i]
		}
	}
	switch v := cur.(type) {
	case string:
		return v, v != ""
	case json.Number:
		return v.String(), true
	}
	return "", false
}

func TestRedactJSONSecrets(t *testing.T) {
	in := `{"access_token":"abc","token_type":"Bearer","refresh_token":"r\"x","client_secret":"s","expires_in":3600,` +
		`"api_key":"k","password":"p","data":{"tokens":[{"value":"eyJhbGciOiJIUzI1NiJ9.payload.sig"}]},"scope":"read write"}`
	got := redactJSONSecrets(in)
	var m map[string]any
	if err := json.Unmarshal([]byte(got), &m); err != nil {
		t.Fatalf("not JSON: %s", got)
	}
	for _, k := range []string{"access_token", "refresh_token", "client_secret", "api_key", "password"} {
		if m[k] != "****" {
			t.Errorf("%s = %v, want masked", k, m[k])
		}
	}
	if m["token_type"] != "Bearer" || m["scope"] != "read write" || m["expires_in"] != float64(3600) {
		t.Errorf("ordinary members changed: %s", got)
	}
	if strings.Contains(got, "eyJhbGci") || !strings.Contains(got, `"value":"****.sig"`) {
		t.Errorf("a token-like value under an ordinary name is not masked: %s", got)
	}
	if got := redactJSONSecrets(`not json "access_token": "abc"`); got != `not json "access_token": "****"` {
		t.Errorf("non-JSON body: %s", got)
	}
}
