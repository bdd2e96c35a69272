package auth

import (
	"cmp"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// minSecretRunes is the length below which a secret is not redacted:
// masking every "abc" in a text would mangle it without protecting
// anything.
const minSecretRunes = 4

// minPatternLen is the shortest encoded form that is searched for.
const minPatternLen = 4

// Redactor masks secrets in text shown to people or stored in results and
// log events: the secret itself, and the forms an endpoint echoes it in.
//
// It finds a secret
//   - as is, and with spaces as "+";
//   - URL-encoded (QueryEscape, PathEscape, every byte %XX, upper or lower
//     case hex, any mix of escaped and plain characters), JSON-escaped
//     (\uXXXX in either case with surrogate pairs, \/, \", \xXX) and
//     HTML-escaped (&amp;, &#NN;, &#xHH;), up to three layers deep (a
//     query-escaped JSON string, a JSON string inside a JSON string);
//   - base64 (standard and URL alphabets, padded or raw), also inside a
//     longer base64 text at any alignment, such as the Basic credentials
//     "client_id:client_secret", and base64 of its query-escaped form
//     (RFC 6749 Basic credentials); any of these escaped as above;
//   - hex, upper or lower case.
//
// An occurrence of the secret itself is replaced by its Mask ("****wxyz"),
// an encoded one by "****". Secrets shorter than 4 characters are left
// alone. A Redactor is immutable and safe for concurrent use; the nil
// *Redactor masks nothing.
type Redactor struct {
	pats   []pattern
	index  map[uint16][]int32 // patterns by their first two bytes
	bits   [1 << 16 / 64]uint64
	maxLen int
}

type pattern struct {
	s    string
	mask string
}

// span is a part [start, end) of a text to replace with mask.
type span struct {
	start, end int
	mask       string
}

// NewRedactor returns a Redactor of the given secrets. Empty secrets and
// secrets shorter than 4 characters are skipped.
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{index: map[uint16][]int32{}}
	seen := map[string]bool{}
	add := func(s, mask string) {
		if len(s) < minPatternLen || seen[s] {
			return
		}
		seen[s] = true
		k := uint16(s[0]) | uint16(s[1])<<8
		r.bits[k>>6] |= 1 << (k & 63)
		r.index[k] = append(r.index[k], int32(len(r.pats)))
		r.pats = append(r.pats, pattern{s: s, mask: mask})
		r.maxLen = max(r.maxLen, len(s))
	}
	for _, s := range secrets {
		if utf8.RuneCountInString(s) < minSecretRunes {
			continue
		}
		add(s, Mask(s))
		if strings.Contains(s, " ") {
			add(strings.ReplaceAll(s, " ", "+"), maskPrefix)
		}
		add(hex.EncodeToString([]byte(s)), maskPrefix)
		add(strings.ToUpper(hex.EncodeToString([]byte(s))), maskPrefix)
		for _, text := range []string{s, url.QueryEscape(s)} {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
				for _, form := range base64Forms(text, enc) {
					add(form, maskPrefix)
				}
			}
		}
	}
	return r
}

// base64Forms returns the base64 encodings of s: padded, raw, and for each
// of the three alignments s can have inside a longer encoded text, the
// characters that only depend on the bytes of s.
func base64Forms(s string, enc *base64.Encoding) []string {
	full := enc.EncodeToString([]byte(s))
	forms := []string{full, strings.TrimRight(full, "=")}
	raw := enc.WithPadding(base64.NoPadding)
	for a := range 3 {
		b := make([]byte, a, a+len(s))
		e := raw.EncodeToString(append(b, s...))
		from, to := (8*a+5)/6, 8*(a+len(s))/6
		forms = append(forms, e[from:to])
	}
	return forms
}

// Lookahead is how many bytes past a cap a caller reads, for Cap to
// recognize a secret that straddles the cap in full: the longest form
// with one layer of escaping.
func (r *Redactor) Lookahead() int {
	if r == nil {
		return 0
	}
	return 10 * r.maxLen
}

// String returns s with every secret masked (s itself when none is in it).
func (r *Redactor) String(s string) string {
	spans := find(r, s)
	if len(spans) == 0 {
		return s
	}
	return string(apply(s, spans))
}

// Bytes returns b with every secret masked: b itself when none is in it,
// otherwise a new slice.
func (r *Redactor) Bytes(b []byte) []byte {
	spans := find(r, b)
	if len(spans) == 0 {
		return b
	}
	return apply(b, spans)
}

// Cap masks b and keeps at most its first n bytes; truncated reports
// whether b was longer than n. Read n+Lookahead() bytes (or all of a
// shorter text) so that a secret straddling n is recognized: it is then
// dropped whole. In any case, a trailing part of the kept bytes that is
// the start of some form of a secret (two characters or more), or an
// escape sequence cut short, is dropped too, so no piece of a secret is
// left at the end.
func (r *Redactor) Cap(b []byte, n int) (out []byte, truncated bool) {
	if len(b) <= n {
		return r.Bytes(b), false
	}
	spans := find(r, b)
	cut := r.trimPartial(b[:n])
	for _, s := range spans {
		if s.start < cut && s.end > cut {
			cut = s.start
		}
	}
	kept := spans[:0]
	for _, s := range spans {
		if s.end <= cut {
			kept = append(kept, s)
		}
	}
	return apply(b[:cut], kept), true
}

// find returns the parts of text that hold a secret, sorted and merged.
func find[T string | []byte](r *Redactor, text T) []span {
	if r == nil || len(r.pats) == 0 || len(text) < minPatternLen {
		return nil
	}
	spans := scan(r, text, nil, nil)
	if hasEscape(text) {
		view, starts := decodeLayer(text, nil)
		for layer := 0; view != nil && layer < 3; layer++ {
			spans = scan(r, view, starts, spans)
			view, starts = decodeLayer(view, starts)
		}
	}
	return merge(spans)
}

// scan appends the occurrences of every pattern in view, as spans of the
// original text: starts[i] is where the byte view[i] comes from (nil when
// view is the original text).
func scan[T string | []byte](r *Redactor, view T, starts []int32, spans []span) []span {
	for i := 0; i+1 < len(view); i++ {
		k := uint16(view[i]) | uint16(view[i+1])<<8
		if r.bits[k>>6]&(1<<(k&63)) == 0 {
			continue
		}
		for _, pi := range r.index[k] {
			p := &r.pats[pi]
			if len(view)-i < len(p.s) || string(view[i:i+len(p.s)]) != p.s {
				continue
			}
			s, e := i, i+len(p.s)
			if starts != nil {
				s, e = int(starts[s]), int(starts[e])
			}
			spans = append(spans, span{start: s, end: e, mask: p.mask})
		}
	}
	return spans
}

// merge sorts spans and joins the overlapping ones: a span inside another
// goes, and two that overlap become one masked with "****".
func merge(spans []span) []span {
	if len(spans) < 2 {
		return spans
	}
	slices.SortFunc(spans, func(a, b span) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(b.end, a.end))
	})
	out := spans[:1]
	for _, s := range spans[1:] {
		last := &out[len(out)-1]
		switch {
		case s.start >= last.end:
			out = append(out, s)
		case s.end <= last.end:
			// Inside last (the longer one at the same start comes
			// first): last keeps its mask.
		default:
			last.end = s.end
			last.mask = maskPrefix
		}
	}
	return out
}

func apply[T string | []byte](text T, spans []span) []byte {
	out := make([]byte, 0, len(text))
	at := 0
	for _, s := range spans {
		out = append(out, text[at:s.start]...)
		out = append(out, s.mask...)
		at = s.end
	}
	return append(out, text[at:]...)
}

// trimPartial returns where the kept text b ends once a trailing escape cut
// short, or a trailing start of a secret's form (in b or in b decoded), is
// dropped.
func (r *Redactor) trimPartial(b []byte) int {
	if r == nil || len(r.pats) == 0 {
		return len(b)
	}
	cut := len(b)
	for range 4 {
		next := r.partialStart(b[:cut])
		if next == cut {
			break
		}
		cut = next
	}
	return cut
}

func (r *Redactor) partialStart(b []byte) int {
	cut := len(b)
	view, starts := string(b), []int32(nil)
	for layer := 0; ; layer++ {
		at := func(i int) int {
			if starts == nil {
				return i
			}
			return int(starts[i])
		}
		if i := incompleteEscape(view); i < len(view) {
			cut = min(cut, at(i))
		}
		for _, p := range r.pats {
			for k := min(len(p.s)-1, len(view)); k >= 2; k-- {
				if strings.HasSuffix(view, p.s[:k]) {
					cut = min(cut, at(len(view)-k))
					break
				}
			}
		}
		if layer == 3 || !hasEscape(view) {
			return cut
		}
		v, s := decodeLayer(view, starts)
		if v == nil {
			return cut
		}
		view, starts = string(v), s
	}
}

func hasEscape[T string | []byte](text T) bool {
	for i := 0; i < len(text); i++ {
		if c := text[i]; c == '%' || c == '\\' || c == '&' {
			return true
		}
	}
	return false
}

// incompleteEscape returns where an escape sequence that the end of s cuts
// short starts, or len(s).
func incompleteEscape(s string) int {
	for i := max(0, len(s)-12); i < len(s); i++ {
		switch t := s[i:]; t[0] {
		case '%':
			if len(t) < 3 && allHex(t[1:]) {
				return i
			}
		case '\\':
			if len(t) == 1 || (t[1] == 'u' && len(t) < 6 && allHex(t[2:])) || (t[1] == 'x' && len(t) < 4 && allHex(t[2:])) {
				return i
			}
			// A high surrogate waiting for its low half.
			if len(t) >= 6 && len(t) < 12 && t[1] == 'u' && allHex(t[2:6]) && isHighSurrogate(hexVal(t[2:6])) &&
				strings.HasPrefix(`\u`, t[6:min(len(t), 8)]) && allHex(t[min(len(t), 8):]) {
				return i
			}
		case '&':
			if len(t) <= 10 && strings.IndexFunc(t[1:], func(c rune) bool {
				return !(c == '#' || c < utf8.RuneSelf && (isHexDigit(byte(c)) || 'a' <= c|0x20 && c|0x20 <= 'z'))
			}) < 0 {
				return i
			}
		}
	}
	return len(s)
}

// decodeLayer decodes one layer of URL, JSON and HTML escapes in src; the
// start of each decoded byte in the original text goes into the second
// result, with one more entry for the end. starts maps src to the original
// text (nil: src is the original). It returns nil when src has no escape.
func decodeLayer[T string | []byte](src T, starts []int32) ([]byte, []int32) {
	at := func(i int) int32 {
		if starts == nil {
			return int32(i)
		}
		return starts[i]
	}
	var dst []byte
	var ds []int32
	copied := 0
	var buf [8]byte
	for i := 0; i < len(src); {
		c := src[i]
		if c != '%' && c != '\\' && c != '&' {
			i++
			continue
		}
		dec, n := decodeEscape(string(src[i:min(len(src), i+14)]), buf[:0])
		if n == 0 {
			i++
			continue
		}
		if dst == nil {
			dst, ds = make([]byte, 0, len(src)), make([]int32, 0, len(src)+1)
		}
		dst = append(dst, src[copied:i]...)
		for j := copied; j < i; j++ {
			ds = append(ds, at(j))
		}
		// The continuation bytes of a decoded character start where the
		// escape ends, so a span that ends inside the character covers
		// all of the escape.
		for k := range dec {
			if k == 0 {
				ds = append(ds, at(i))
			} else {
				ds = append(ds, at(i+n))
			}
		}
		dst = append(dst, dec...)
		i += n
		copied = i
	}
	if dst == nil {
		return nil, nil
	}
	dst = append(dst, src[copied:]...)
	for j := copied; j <= len(src); j++ {
		ds = append(ds, at(j))
	}
	return dst, ds
}

// decodeEscape decodes the escape sequence at the start of s into buf and
// returns it with the number of bytes it takes in s (0: not an escape).
func decodeEscape(s string, buf []byte) ([]byte, int) {
	switch s[0] {
	case '%':
		if len(s) >= 3 && allHex(s[1:3]) {
			return append(buf, byte(hexVal(s[1:3]))), 3
		}
	case '\\':
		if len(s) < 2 {
			return nil, 0
		}
		switch c := s[1]; c {
		case '"', '\\', '/', '\'':
			return append(buf, c), 2
		case 'b':
			return append(buf, '\b'), 2
		case 'f':
			return append(buf, '\f'), 2
		case 'n':
			return append(buf, '\n'), 2
		case 'r':
			return append(buf, '\r'), 2
		case 't':
			return append(buf, '\t'), 2
		case 'x':
			if len(s) >= 4 && allHex(s[2:4]) {
				return append(buf, byte(hexVal(s[2:4]))), 4
			}
		case 'u':
			if len(s) < 6 || !allHex(s[2:6]) {
				return nil, 0
			}
			u := hexVal(s[2:6])
			switch {
			case isHighSurrogate(u):
				if len(s) >= 12 && s[6] == '\\' && s[7] == 'u' && allHex(s[8:12]) {
					if lo := hexVal(s[8:12]); lo >= 0xDC00 && lo <= 0xDFFF {
						return utf8.AppendRune(buf, rune((u-0xD800)<<10|(lo-0xDC00)+0x10000)), 12
					}
				}
				return nil, 0
			case u >= 0xDC00 && u <= 0xDFFF:
				return nil, 0
			}
			return utf8.AppendRune(buf, rune(u)), 6
		}
	case '&':
		end := strings.IndexByte(s, ';')
		if end < 2 {
			return nil, 0
		}
		name := s[1:end]
		switch name {
		case "amp":
			return append(buf, '&'), end + 1
		case "lt":
			return append(buf, '<'), end + 1
		case "gt":
			return append(buf, '>'), end + 1
		case "quot":
			return append(buf, '"'), end + 1
		case "apos":
			return append(buf, '\''), end + 1
		}
		if name[0] != '#' || len(name) < 2 {
			return nil, 0
		}
		v, ok := 0, true
		if name[1] == 'x' || name[1] == 'X' {
			ok = len(name) > 2 && len(name) <= 8 && allHex(name[2:])
			if ok {
				v = hexVal(name[2:])
			}
		} else {
			for _, c := range []byte(name[1:]) {
				ok = ok && c >= '0' && c <= '9' && v <= utf8.MaxRune
				v = v*10 + int(c-'0')
			}
		}
		if ok && v <= utf8.MaxRune && utf8.ValidRune(rune(v)) {
			return utf8.AppendRune(buf, rune(v)), end + 1
		}
	}
	return nil, 0
}

func isHighSurrogate(u int) bool { return u >= 0xD800 && u <= 0xDBFF }

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f'
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

func hexVal(s string) int {
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c <= '9':
			v = v<<4 | int(c-'0')
		default:
			v = v<<4 | int(c|0x20-'a'+10)
		}
	}
	return v
}
