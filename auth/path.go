package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"customactions/events"
)

// Path locates a value in an auth response: a header (header:<Name>) or a
// dot path into the JSON body with [n] for array items
// (data.tokens[0].value).
type Path struct {
	raw    string
	header string // non-empty for header:<Name>
	steps  []step
}

type step struct {
	key   string // "" for an index step
	index int
}

// ErrNotInResponse is returned by Path.Extract when the response has nothing
// at the path.
var ErrNotInResponse = errors.New("nothing at the path in the auth response")

// String returns the path as written.
func (p Path) String() string { return p.raw }

// ParsePath parses a token_path or expires_in_path.
func ParsePath(s string) (Path, error) {
	p := Path{raw: s}
	if name, ok := strings.CutPrefix(s, "header:"); ok {
		name = strings.TrimSpace(name)
		if !events.ValidHeaderName(name) {
			return p, fmt.Errorf("%q after header: is not a valid header name", name)
		}
		p.header = http.CanonicalHeaderKey(name)
		return p, nil
	}
	if s == "" {
		return p, errors.New("empty path")
	}
	if len(s) > 512 {
		return p, errors.New("path is longer than 512 characters")
	}
	for i, seg := range strings.Split(s, ".") {
		if seg == "" {
			return p, fmt.Errorf("empty segment %d in %q (two dots, or a dot at an end)", i+1, s)
		}
		key, rest, _ := strings.Cut(seg, "[")
		if strings.Contains(key, "]") {
			return p, fmt.Errorf("unexpected ] in segment %q", seg)
		}
		if key != "" {
			p.steps = append(p.steps, step{key: key})
		} else if i > 0 {
			return p, fmt.Errorf("segment %q needs a name before [", seg)
		}
		if len(seg) > len(key) {
			rest = "[" + rest
		}
		for rest != "" {
			if rest[0] != '[' {
				return p, fmt.Errorf("unexpected %q after ] in segment %q", rest, seg)
			}
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return p, fmt.Errorf("missing ] in segment %q", seg)
			}
			n, err := strconv.Atoi(rest[1:end])
			if err != nil || n < 0 || rest[1] == '+' || rest[1] == '-' {
				return p, fmt.Errorf("index %q in segment %q is not a non-negative integer", rest[1:end], seg)
			}
			p.steps = append(p.steps, step{index: n, key: ""})
			rest = rest[end+1:]
		}
	}
	return p, nil
}

// IsHeader reports whether the path names a response header.
func (p Path) IsHeader() bool { return p.header != "" }

// Extract returns the string at the path: a header's value, or a JSON
// string or number of the body. It returns an error wrapping
// ErrNotInResponse when there is nothing there, and a plain error when the
// body is not JSON or the value is not a string or a number.
func (p Path) Extract(header http.Header, body []byte) (string, error) {
	if p.header != "" {
		v := header.Get(p.header)
		if v == "" {
			return "", fmt.Errorf("%w: no %s header", ErrNotInResponse, p.header)
		}
		return v, nil
	}
	var doc any
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return "", fmt.Errorf("auth response body is not JSON")
	}
	cur := doc
	for i, st := range p.steps {
		switch v := cur.(type) {
		case map[string]any:
			if st.key == "" {
				return "", fmt.Errorf("%w: %s is an object, not an array", ErrNotInResponse, p.prefix(i))
			}
			next, ok := v[st.key]
			if !ok {
				return "", fmt.Errorf("%w: no %q at %s", ErrNotInResponse, st.key, p.prefix(i))
			}
			cur = next
		case []any:
			if st.key != "" {
				return "", fmt.Errorf("%w: %s is an array, not an object", ErrNotInResponse, p.prefix(i))
			}
			if st.index >= len(v) {
				return "", fmt.Errorf("%w: %s has %d items, no [%d]", ErrNotInResponse, p.prefix(i), len(v), st.index)
			}
			cur = v[st.index]
		default:
			return "", fmt.Errorf("%w: %s is not an object or array", ErrNotInResponse, p.prefix(i))
		}
	}
	switch v := cur.(type) {
	case string:
		if v == "" {
			return "", fmt.Errorf("%w: the value at %s is empty", ErrNotInResponse, p.raw)
		}
		return v, nil
	case json.Number:
		return v.String(), nil
	case nil:
		return "", fmt.Errorf("%w: the value at %s is null", ErrNotInResponse, p.raw)
	default:
		return "", fmt.Errorf("%w: the value at %s is not a string or a number", ErrNotInResponse, p.raw)
	}
}

// prefix names the part of the path before step i, for error messages.
func (p Path) prefix(i int) string {
	if i == 0 {
		return "the top level"
	}
	var b strings.Builder
	for _, st := range p.steps[:i] {
		if st.key != "" {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(st.key)
		} else {
			fmt.Fprintf(&b, "[%d]", st.index)
		}
	}
	return b.String()
}
