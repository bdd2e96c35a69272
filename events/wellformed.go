package events

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is how deeply objects and arrays may nest in a trigger, the
// trigger object itself being level 1: a context object (level 2) may hold
// 62 more levels. encoding/json allows 10,000 and the fast decoder used to
// allow any depth, so a small trigger nested 130,000 deep cost ~80 MB of
// stack (issue 13); 64 is far more than any real trigger needs.
const MaxDepth = 64

// checkWellFormed refuses, from the raw bytes and before encoding/json
// sees them, what encoding/json would either pay for dearly or silently
// change:
//
//   - nesting deeper than MaxDepth (a cheap iterative scan, so truncated
//     and unclosed input costs no more than closed input);
//   - bytes that are not UTF-8 (encoding/json turns them into U+FFFD);
//   - \u escapes of half a UTF-16 surrogate pair, such as "\ud800"
//     (encoding/json turns them into U+FFFD as well).
//
// The rule is the same everywhere in the trigger, context and unknown
// fields included (the I-JSON profile, RFC 7493): context is copied
// verbatim into results, and a reader of those must not meet text that has
// no meaning as Unicode. fastDecode never accepts such input, so it agrees.
func checkWellFormed(data []byte) error {
	if err := checkDepth(data); err != nil {
		return err
	}
	if !utf8.Valid(data) {
		return invalid("trigger is not valid UTF-8 (bad byte at offset %d)", invalidUTF8At(data))
	}
	return checkSurrogates(data)
}

// checkDepth counts the objects and arrays open outside strings and
// refuses more than MaxDepth at once. It names the trigger's member the
// nesting is in when it can.
func checkDepth(data []byte) error {
	depth := 0
	var key, last []byte // the member being read at level 1; the last string seen there
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			start := i + 1
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			if depth == 1 {
				last = data[start:min(i, len(data))]
			}
		case ':':
			if depth == 1 {
				key = last
			}
		case '{', '[':
			if depth++; depth > MaxDepth {
				if key == nil || len(key) > 64 {
					return invalid("JSON nested deeper than %d levels", MaxDepth)
				}
				return invalid("JSON nested deeper than %d levels (in %q)", MaxDepth, key)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

func invalidUTF8At(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// checkSurrogates refuses a \u escape of a surrogate that is not the high
// half followed by the low half of a pair. A backslash only occurs inside
// strings in JSON, so the escapes are found without tracking strings.
func checkSurrogates(data []byte) error {
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], '\\')
		if j < 0 || i+j+1 >= len(data) {
			return nil
		}
		i += j
		if data[i+1] != 'u' {
			i += 2 // another escape, such as \\ or \"
			continue
		}
		r, ok := hex4At(data, i+2)
		if !ok {
			i += 2 // a bad escape: encoding/json reports it
			continue
		}
		at := i
		i += 6
		if !utf16.IsSurrogate(r) {
			continue
		}
		if r < 0xdc00 && i+1 < len(data) && data[i] == '\\' && data[i+1] == 'u' {
			if r2, ok := hex4At(data, i+2); ok && 0xdc00 <= r2 && r2 <= 0xdfff {
				i += 6
				continue
			}
		}
		return invalid(`the escape \u%04x at offset %d is half of a UTF-16 surrogate pair, not a character`, r, at)
	}
}

// hex4At reads four hexadecimal digits at data[i:].
func hex4At(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(data[i:i+4]), 16, 32)
	return rune(n), err == nil
}

// checkHeaderCount refuses more than maxHeaders members in request.headers
// before encoding/json builds the map: a 256 KiB trigger holds ~26,000
// empty headers, ~3 MB of map, and only then would validate refuse them.
// The members are found by encoding/json itself, into a shadow of Trigger
// whose headers only count (no map, no copy), so every spelling it would
// take as request.headers (another case, escapes, repeated members) is
// counted; each member counts, as in fastDecode.
func checkHeaderCount(data []byte, maxHeaders int) error {
	var shadow struct {
		Request struct {
			Headers headerCount `json:"headers"`
		} `json:"request"`
	}
	_ = json.Unmarshal(data, &shadow) // what does not count is reported by the real decoding
	if n := int(shadow.Request.Headers); n > maxHeaders {
		return invalid("request.headers has %d headers, more than the maximum of %d", n, maxHeaders)
	}
	return nil
}

// headerCount adds up the members of every JSON object it is decoded from.
type headerCount int

func (c *headerCount) UnmarshalJSON(data []byte) error {
	*c += headerCount(countMembers(data))
	return nil
}

// countMembers counts the members of the JSON object data (0 if data is
// another kind of value): the colons at its own level, outside strings.
func countMembers(data []byte) int {
	if len(data) == 0 || data[0] != '{' {
		return 0
	}
	n, depth := 0, 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case ':':
			if depth == 1 {
				n++
			}
		}
	}
	return n
}
