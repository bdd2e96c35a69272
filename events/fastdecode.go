package events

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// fastDecode decodes the common shape of a trigger without reflection. It
// returns false whenever the input is anything but plain (an odd key
// spelling, null where a string goes, a number that is not an integer,
// invalid UTF-8, a lone surrogate escape, nesting deeper than MaxDepth,
// more than maxHeaders header members, invalid JSON), and the caller then
// uses checkWellFormed, checkHeaderCount and encoding/json,
// whose result is the reference: when fastDecode returns true, t is what
// json.Unmarshal would have produced (FuzzFastDecode checks it).
func fastDecode(data []byte, t *Trigger, maxHeaders int) bool {
	d := decoder{data: data, maxHeaders: maxHeaders}
	if !d.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return d.str(&t.ID)
		case "action_id":
			return d.str(&t.ActionID)
		case "source":
			return d.str(&t.Source)
		case "token_id":
			return d.str(&t.TokenID)
		case "request":
			return d.request(&t.Request)
		case "context":
			return d.raw(&t.Context)
		case "end_user":
			return d.endUser(&t.EndUser)
		}
		return !foldsTo(key, "id", "action_id", "source", "token_id", "request", "context", "end_user") && d.skip()
	}) {
		return false
	}
	d.ws()
	return d.i == len(d.data)
}

type decoder struct {
	data  []byte
	i     int
	depth int // objects and arrays open, at most MaxDepth
	// headers counts the members of request.headers read, duplicates
	// included, up to maxHeaders: no map grows past the limit.
	headers, maxHeaders int
}

// enter counts one more level of nesting; past MaxDepth the input is left
// to checkWellFormed, which refuses it. Every caller leaves the level
// (depth--) on its successful paths; a failed decode is abandoned whole.
func (d *decoder) enter() bool {
	d.depth++
	return d.depth <= MaxDepth
}

func (d *decoder) ws() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) next(c byte) bool {
	d.ws()
	if d.i < len(d.data) && d.data[d.i] == c {
		d.i++
		return true
	}
	return false
}

// object reads {"key": value, ...}, handing each key to member, which reads
// the value. Keys with escapes are left to encoding/json.
func (d *decoder) object(member func(key []byte) bool) bool {
	if !d.next('{') || !d.enter() {
		return false
	}
	if d.next('}') {
		d.depth--
		return true
	}
	for {
		key, ok := d.plainKey()
		if !ok || !d.next(':') || !member(key) {
			return false
		}
		if d.next(',') {
			continue
		}
		d.depth--
		return d.next('}')
	}
}

// plainKey reads a member name without escapes, as bytes of the input.
func (d *decoder) plainKey() ([]byte, bool) {
	d.ws()
	if d.i >= len(d.data) || d.data[d.i] != '"' {
		return nil, false
	}
	start := d.i + 1
	for j := start; j < len(d.data); j++ {
		switch c := d.data[j]; {
		case c == '"':
			d.i = j + 1
			key := d.data[start:j]
			return key, utf8.Valid(key)
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// endUser reads the end_user object; null is left to encoding/json.
func (d *decoder) endUser(u **EndUser) bool {
	d.ws()
	if d.i >= len(d.data) || d.data[d.i] != '{' {
		return false
	}
	if *u == nil {
		*u = &EndUser{}
	}
	eu := *u
	return d.object(func(key []byte) bool {
		if string(key) == "id" {
			return d.str(&eu.ID)
		}
		return !foldsTo(key, "id") && d.skip()
	})
}

func (d *decoder) request(r *Request) bool {
	d.ws()
	if strings.HasPrefix(string(d.data[d.i:min(d.i+4, len(d.data))]), "null") {
		return false
	}
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "method":
			return d.str(&r.Method)
		case "url":
			return d.str(&r.URL)
		case "body":
			return d.str(&r.Body)
		case "timeout_ms":
			return d.integer(&r.TimeoutMS)
		case "headers":
			d.ws()
			if d.i < len(d.data) && d.data[d.i] != '{' {
				return false
			}
			if r.Headers == nil {
				r.Headers = map[string]string{}
			}
			return d.object(func(name []byte) bool {
				if d.headers++; d.headers > d.maxHeaders {
					return false
				}
				var v string
				if !d.str(&v) {
					return false
				}
				r.Headers[string(name)] = v
				return true
			})
		case "sensitive_headers":
			return false // rare: left to encoding/json
		}
		return !foldsTo(key, "method", "url", "body", "timeout_ms", "headers", "sensitive_headers") && d.skip()
	})
}

// str reads a JSON string into s; null and invalid UTF-8 are refused.
func (d *decoder) str(s *string) bool {
	d.ws()
	if d.i >= len(d.data) || d.data[d.i] != '"' {
		return false
	}
	d.i++
	start := d.i
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			seg := d.data[start:d.i]
			if !utf8.Valid(seg) {
				return false
			}
			*s = string(seg)
			d.i++
			return true
		case c == '\\':
			return d.escapedStr(start, s)
		case c < 0x20:
			return false
		}
		d.i++
	}
	return false
}

// escapedStr finishes a string that has escapes, from start.
func (d *decoder) escapedStr(start int, s *string) bool {
	var b strings.Builder
	b.Write(d.data[start:d.i])
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			d.i++
			out := b.String()
			if !utf8.ValidString(out) {
				return false
			}
			*s = out
			return true
		case c < 0x20:
			return false
		case c != '\\':
			b.WriteByte(c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.data) {
			return false
		}
		e := d.data[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return false
			}
			if utf16.IsSurrogate(r) {
				// A lone surrogate becomes U+FFFD in encoding/json; only
				// well-formed pairs are taken here.
				if d.i+6 > len(d.data) || d.data[d.i] != '\\' || d.data[d.i+1] != 'u' {
					return false
				}
				d.i += 2
				r2, ok := d.hex4()
				if !ok {
					return false
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return false
				}
			}
			b.WriteRune(r)
		default:
			return false
		}
	}
	return false
}

func (d *decoder) hex4() (rune, bool) {
	if d.i+4 > len(d.data) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d.data[d.i:d.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	d.i += 4
	return rune(n), true
}

// integer reads a JSON integer (no fraction or exponent) that fits an
// int64 into n, without allocating; anything else is left to
// encoding/json, which refuses it.
func (d *decoder) integer(n *int64) bool {
	d.ws()
	neg := d.i < len(d.data) && d.data[d.i] == '-'
	if neg {
		d.i++
	}
	digits := d.i
	var v uint64
	for d.i < len(d.data) && d.data[d.i] >= '0' && d.data[d.i] <= '9' {
		if d.i-digits == 19 {
			return false // 20 digits or more: beyond int64
		}
		v = v*10 + uint64(d.data[d.i]-'0')
		d.i++
	}
	if d.i == digits || (d.data[digits] == '0' && d.i-digits > 1) {
		return false
	}
	if d.i < len(d.data) && (d.data[d.i] == '.' || d.data[d.i] == 'e' || d.data[d.i] == 'E') {
		return false
	}
	switch {
	case neg && v <= 1<<63:
		*n = int64(-v) // -(1<<63) wraps to math.MinInt64, as wanted
	case !neg && v <= math.MaxInt64:
		*n = int64(v)
	default:
		return false
	}
	return true
}

// raw reads any value and keeps its bytes (a JSON object only: context).
func (d *decoder) raw(v *json.RawMessage) bool {
	d.ws()
	if d.i >= len(d.data) || d.data[d.i] != '{' {
		return false // null or another kind: let encoding/json decide
	}
	start := d.i
	if !d.skip() {
		return false
	}
	*v = append(json.RawMessage(nil), d.data[start:d.i]...)
	return true
}

// skip reads over any valid JSON value nested at most MaxDepth deep, so
// its recursion is bounded.
func (d *decoder) skip() bool {
	d.ws()
	if d.i >= len(d.data) {
		return false
	}
	switch c := d.data[d.i]; {
	case c == '{':
		return d.object(func([]byte) bool { return d.skip() })
	case c == '[':
		d.i++
		if !d.enter() {
			return false
		}
		if d.next(']') {
			d.depth--
			return true
		}
		for {
			if !d.skip() {
				return false
			}
			if d.next(',') {
				continue
			}
			d.depth--
			return d.next(']')
		}
	case c == '"':
		var s string
		return d.str(&s)
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	}
	return false
}

func (d *decoder) literal(word string) bool {
	if strings.HasPrefix(string(d.data[d.i:min(d.i+len(word), len(d.data))]), word) {
		d.i += len(word)
		return true
	}
	return false
}

// number reads a JSON number per the grammar.
func (d *decoder) number() bool {
	if d.data[d.i] == '-' {
		d.i++
	}
	digits := func() int {
		s := d.i
		for d.i < len(d.data) && d.data[d.i] >= '0' && d.data[d.i] <= '9' {
			d.i++
		}
		return d.i - s
	}
	start := d.i
	n := digits()
	if n == 0 || (d.data[start] == '0' && n > 1) {
		return false
	}
	if d.i < len(d.data) && d.data[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return false
		}
	}
	if d.i < len(d.data) && (d.data[d.i] == 'e' || d.data[d.i] == 'E') {
		d.i++
		if d.i < len(d.data) && (d.data[d.i] == '+' || d.data[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// foldsTo reports whether key matches one of names only case-insensitively,
// which encoding/json would accept as that field.
func foldsTo(key []byte, names ...string) bool {
	for _, n := range names {
		if string(key) != n && strings.EqualFold(string(key), n) {
			return true
		}
	}
	return false
}
