package auth

import (
	"cmp"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"
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
//   - as is, with any of its spaces as "+";
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
// An occurrence of the secret, also escaped, is replaced by its Mask
// ("****wxyz"); a base64 or hex one, or secrets that overlap, by "****".
// Secrets shorter than 4 characters are left alone. A Redactor is
// immutable and safe for concurrent use; the nil *Redactor masks nothing.
//
// To redact a response that echoes the token it was called with, make a
// Redactor of the header value sent and the token in it (a text token's
// Value, a fetched token), once per token, read Lookahead bytes past the
// cap and keep what Cap returns, and pass every header value to String.
//
// The search is one pass of Wu-Manber over the text (it skips ahead by up
// to the length of the shortest form), and one more over a decoded copy
// for each layer of escapes, only when the text holds an escape that
// decodes to a byte of some form.
type Redactor struct {
	pats   []pattern
	m      int // length of the shortest pattern
	maxLen int
	// maxShift-less[h] is how far the window may move when its last two
	// bytes hash to h; head[h]-1 is the first entry of the list of the
	// patterns whose first m bytes end with such two bytes.
	maxShift uint8
	less     []uint8
	head     []uint16
	mask     int // len(less)-1: the tables grow with the patterns
	fold     int // see blockHash
	entries  []entry
	// alpha holds the bytes that occur in some pattern: an escape that
	// decodes to none of them cannot be part of a secret (unless it
	// decodes to an escape character that starts an escape of the next
	// layer).
	alpha [256]bool
}

// The hash tables have a slot per 8 pattern positions, at least 256 and at
// most 4096: a Redactor is kept per token and per connection (there may be
// a hundred thousand), and a few patterns need no 4096 slots to skip well.
const (
	minHashSize = 1 << 8
	maxHashSize = 1 << 12
)

// blockHash hashes two bytes into mask+1 slots (a power of two up to
// 4096): the 13 bits of a<<5^b, shifted right by fold and folded onto
// themselves (fold 13, for 4096 slots, leaves them as they are).
func blockHash(a, b byte, mask, fold int) int {
	h := int(a)<<5 ^ int(b)
	return (h ^ h>>fold) & mask
}

// entry is a pattern in a list of head; next-1 is the next entry.
type entry struct{ pat, next uint16 }

type pattern struct {
	s    string
	mask string
	// space: s has a space, which a text may also write as "+".
	space bool
}

// matches reports whether t is p.s, or its start when t is shorter, with
// any of its spaces written as "+".
func (p *pattern) matches(t string) bool {
	s := p.s[:len(t)]
	if !p.space || t == s {
		return t == s
	}
	for i := 0; i < len(t); i++ {
		if t[i] != s[i] && !(s[i] == ' ' && t[i] == '+') {
			return false
		}
	}
	return true
}

// span is a part [start, end) of a text to replace with mask.
type span struct {
	start, end int
	mask       string
}

// NewRedactor returns a Redactor of the given secrets. Empty secrets and
// secrets shorter than 4 characters are skipped.
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{pats: make([]pattern, 0, 16*len(secrets))}
	add := func(s, mask string) {
		if len(s) < minPatternLen {
			return
		}
		for _, p := range r.pats {
			if p.s == s {
				return
			}
		}
		r.pats = append(r.pats, pattern{s: s, mask: mask, space: strings.Contains(s, " ")})
	}
	for _, s := range secrets {
		if utf8.RuneCountInString(s) < minSecretRunes {
			continue
		}
		add(s, Mask(s))
		// A secret with escape-like parts ("\\", "%41", "&amp;") reads
		// otherwise in a decoded view, where the escapes of one kind and
		// the parts that kind leaves as they are (HTML leaves "\\", JSON
		// leaves "%41") are all decoded: search for its escapings, up to
		// two deep, as a decoded view reads them.
		if strings.ContainsAny(s, "%\\&") {
			for _, e1 := range escapings {
				for _, e2 := range escapings {
					e := e2(e1(s))
					for range 3 {
						next := unescapeAll(e)
						if next == e {
							break
						}
						add(next, Mask(s))
						e = next
					}
				}
			}
		}
		h := hex.EncodeToString([]byte(s))
		add(h, maskPrefix)
		add(strings.ToUpper(h), maskPrefix)
		q := url.QueryEscape(s)
		for _, text := range []string{s, q} {
			std := base64Forms(text, base64.RawStdEncoding)
			for _, form := range std {
				add(form, maskPrefix)
			}
			if slices.ContainsFunc(std[:], func(f string) bool { return strings.ContainsAny(f, "+/") }) {
				for _, form := range base64Forms(text, base64.RawURLEncoding) {
					add(form, maskPrefix)
				}
			}
			if q == s {
				break
			}
		}
	}
	if len(r.pats) == 0 {
		return r
	}
	r.m = len(r.pats[0].s)
	for _, p := range r.pats {
		r.m = min(r.m, len(p.s))
		r.maxLen = max(r.maxLen, len(p.s))
		for i := 0; i < len(p.s); i++ {
			r.alpha[p.s[i]] = true
		}
		if p.space {
			r.alpha['+'] = true
		}
	}
	r.maxShift = uint8(min(r.m-1, 255))
	size := minHashSize
	for size < maxHashSize && size < 8*len(r.pats)*max(r.m-1, 1) {
		size <<= 1
	}
	if len(r.pats)*4 >= 1<<16 {
		// Entries are uint16: a token has at most a few hundred secrets
		// (MaxAuthFields), each with at most 16 patterns.
		panic("auth: too many secrets for one Redactor")
	}
	r.less, r.head, r.mask, r.fold = make([]uint8, size), make([]uint16, size), size-1, 8
	if size == maxHashSize {
		r.fold = 13
	}
	r.entries = make([]entry, 0, len(r.pats))
	for i, p := range r.pats {
		for j := 1; j < r.m; j++ {
			shift := uint8(min(r.m-1-j, 255))
			hs, n := blockHashes(p.s[j-1], p.s[j], r.mask, r.fold)
			for _, h := range hs[:n] {
				if r.maxShift-r.less[h] > shift {
					r.less[h] = r.maxShift - shift
				}
			}
		}
		hs, n := blockHashes(p.s[r.m-2], p.s[r.m-1], r.mask, r.fold)
		for k, h := range hs[:n] {
			if !slices.Contains(hs[:k], h) {
				r.entries = append(r.entries, entry{pat: uint16(i), next: r.head[h]})
				r.head[h] = uint16(len(r.entries))
			}
		}
	}
	return r
}

// blockHashes returns the hashes of the two bytes a, b as a text may write
// them: a space also as "+".
func blockHashes(a, b byte, mask, fold int) (hs [4]int, n int) {
	if a != ' ' && b != ' ' {
		hs[0] = blockHash(a, b, mask, fold)
		return hs, 1
	}
	as, bs := []byte{a, '+'}[:1], []byte{b, '+'}[:1]
	if a == ' ' {
		as = as[:2]
	}
	if b == ' ' {
		bs = bs[:2]
	}
	for _, x := range as {
		for _, y := range bs {
			hs[n] = blockHash(x, y, mask, fold)
			n++
		}
	}
	return hs, n
}

// base64Forms returns the base64 encodings of s (enc has no padding):
// raw, padded, and for each of the three alignments s can have inside a
// longer encoded text, the characters that only depend on the bytes of s.
func base64Forms(s string, enc *base64.Encoding) [5]string {
	raw := enc.EncodeToString([]byte(s))
	forms := [5]string{raw, raw + "=="[:(4-len(raw)%4)%4], raw[:8*len(s)/6]}
	for a := 1; a <= 2; a++ {
		e := enc.EncodeToString(append(make([]byte, a, a+len(s)), s...))
		forms[2+a] = e[(8*a+5)/6 : 8*(a+len(s))/6]
	}
	return forms
}

// Lookahead is how many bytes past a cap a caller reads, for Cap to
// recognize a secret that straddles the cap in full: the longest form
// with one layer of escaping (an escape takes at most 14 bytes for one
// byte, "&#00000000065;").
func (r *Redactor) Lookahead() int {
	if r == nil {
		return 0
	}
	return 14 * r.maxLen
}

// String returns s with every secret masked (s itself when none is in it).
func (r *Redactor) String(s string) string {
	spans := r.find(s)
	if len(spans) == 0 {
		return s
	}
	return string(apply(s, spans))
}

// Bytes returns b with every secret masked: b itself when none is in it,
// otherwise a new slice.
func (r *Redactor) Bytes(b []byte) []byte {
	spans := r.find(readOnly(b))
	if len(spans) == 0 {
		return b
	}
	return apply(readOnly(b), spans)
}

// readOnly returns the bytes of b as a string without copying them, for a
// search that neither keeps the string nor runs while b changes.
func readOnly(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

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
	text := readOnly(b)
	spans := r.find(text)
	cut := r.trimPartial(text[:n])
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
	return apply(text[:cut], kept), true
}

// find returns the parts of text that hold a secret, sorted and merged.
func (r *Redactor) find(text string) []span {
	if r == nil || len(r.pats) == 0 || len(text) < r.m {
		return nil
	}
	spans := r.scan(text, nil, nil)
	var v *view
	for layer := 0; layer < 3; layer++ {
		src := text
		if v != nil {
			src = v.text
		}
		next := r.decode(src, v)
		if next == nil {
			break
		}
		spans = r.scan(next.text, next, spans)
		v = next
	}
	return merge(spans)
}

// scan appends the occurrences of every pattern in text, as spans of the
// original text (v maps text to it; nil when text is the original).
func (r *Redactor) scan(text string, v *view, spans []span) []span {
	m, mask, fold, less := r.m, r.mask, r.fold, r.less
	for i := m - 1; i < len(text); {
		h := blockHash(text[i-1], text[i], mask, fold)
		if s := r.maxShift - less[h]; s > 0 {
			i += int(s)
			continue
		}
		start := i - m + 1
		for e := r.head[h]; e != 0; e = r.entries[e-1].next {
			p := &r.pats[r.entries[e-1].pat]
			if len(text)-start < len(p.s) || !p.matches(text[start:start+len(p.s)]) {
				continue
			}
			s, e := start, start+len(p.s)
			if v != nil {
				s, e = v.orig(s), v.orig(e)
			}
			spans = append(spans, span{start: s, end: e, mask: p.mask})
		}
		i++
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

func apply(text string, spans []span) []byte {
	out := make([]byte, 0, len(text))
	at := 0
	for _, s := range spans {
		out = append(out, text[at:s.start]...)
		out = append(out, s.mask...)
		at = s.end
	}
	return append(out, text[at:]...)
}

// view is a text with one layer of escapes decoded, and where each of its
// bytes comes from in the text it was decoded from (src, itself a view or
// the original text when nil).
type view struct {
	text string
	escs []decoded
	src  *view
}

// decoded is an escape of the source text at [r, r+rn), decoded into the
// view's bytes [d, d+dn).
type decoded struct{ d, dn, r, rn int32 }

// orig returns the offset in the original text of the view's byte d (or of
// the end, d == len(text)). The continuation bytes of a decoded character
// map to the end of its escape, so a span that ends inside the character
// covers all of the escape.
func (v *view) orig(d int) int {
	for ; v != nil; v = v.src {
		k, _ := slices.BinarySearchFunc(v.escs, d+1, func(e decoded, t int) int { return cmp.Compare(int(e.d), t) })
		if k--; k < 0 {
			continue
		}
		e := v.escs[k]
		switch {
		case d == int(e.d):
			d = int(e.r)
		case d < int(e.d+e.dn):
			d = int(e.r + e.rn)
		default:
			d = int(e.r+e.rn) + d - int(e.d+e.dn)
		}
	}
	return d
}

// decode returns src with its URL, JSON and HTML escapes decoded, as a
// view over src (which comes from the view from, nil for the original
// text), or nil when no escape of src decodes to a byte of some pattern.
// Other escapes are left as they are: no secret can go through them.
func (r *Redactor) decode(src string, from *view) *view {
	var out []byte
	var escs []decoded
	copied := 0
	var buf [8]byte
	f := escapeFinder{s: src, next: [3]int{-1, -1, -1}}
	for i := 0; i < len(src); {
		j := f.from(i)
		if j < 0 {
			break
		}
		dec, n := decodeEscape(src[j:min(len(src), j+14)], buf[:0])
		if n == 0 {
			i = j + 1
			continue
		}
		i = j + n
		if !r.relevant(dec, src[i:]) {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(src))
		}
		out = append(out, src[copied:j]...)
		escs = append(escs, decoded{d: int32(len(out)), dn: int32(len(dec)), r: int32(j), rn: int32(n)})
		out = append(out, dec...)
		copied = i
	}
	if out == nil {
		return nil
	}
	out = append(out, src[copied:]...)
	return &view{text: readOnly(out), escs: escs, src: from}
}

// relevant reports whether the bytes an escape decodes to, followed by
// rest, may be part of a secret: one of them occurs in some pattern, or is
// an escape character that may start an escape of the next layer ("%2541"
// is "%41", then "A").
func (r *Redactor) relevant(dec []byte, rest string) bool {
	for _, c := range dec {
		if r.alpha[c] || (c == '%' || c == '\\' || c == '&') && leadsEscape(c, rest) {
			return true
		}
	}
	return false
}

// leadsEscape reports whether the escape character c followed by rest may
// start an escape: it does, or rest ends before it could, or rest starts
// with an escape (which may decode to the rest of one).
func leadsEscape(c byte, rest string) bool {
	if rest == "" || rest[0] == '%' || rest[0] == '\\' || rest[0] == '&' {
		return true
	}
	var b [14]byte
	b[0] = c
	n := copy(b[1:], rest)
	t := string(b[:1+n])
	if _, k := decodeEscape(t, nil); k > 0 {
		return true
	}
	return len(rest) < len(b)-1 && incompleteEscape(t) == 0
}

// escapings are the ways a text escapes a secret: none, HTML, JSON, URL.
var escapings = []func(string) string{
	func(s string) string { return s },
	html.EscapeString,
	func(s string) string { b, _ := json.Marshal(s); return string(b[1 : len(b)-1]) },
	url.QueryEscape,
	url.PathEscape,
}

// unescapeAll returns s with every escape decoded, once.
func unescapeAll(s string) string {
	var b strings.Builder
	var buf [8]byte
	copied := 0
	for i := 0; i < len(s); {
		dec, n := decodeEscape(s[i:min(len(s), i+14)], buf[:0])
		if n == 0 {
			i++
			continue
		}
		b.WriteString(s[copied:i])
		b.Write(dec)
		i += n
		copied = i
	}
	if copied == 0 {
		return s
	}
	b.WriteString(s[copied:])
	return b.String()
}

// escapeFinder finds the next '%', '\\' or '&' of a text, remembering
// where each of them is next so the text is read once for each.
type escapeFinder struct {
	s    string
	next [3]int // -1: not searched yet
}

var escapeChars = [3]byte{'%', '\\', '&'}

// from returns the index of the first escape character at or after i, or
// -1.
func (f *escapeFinder) from(i int) int {
	best := -1
	for k, c := range escapeChars {
		if f.next[k] < i && f.next[k] != len(f.s) {
			if j := strings.IndexByte(f.s[i:], c); j >= 0 {
				f.next[k] = i + j
			} else {
				f.next[k] = len(f.s)
			}
		}
		if f.next[k] < len(f.s) && (best < 0 || f.next[k] < best) {
			best = f.next[k]
		}
	}
	return best
}

// trimPartial returns where the kept text ends once a trailing escape cut
// short, or a trailing start of a secret's form (in b or in b decoded), is
// dropped.
func (r *Redactor) trimPartial(text string) int {
	if r == nil || len(r.pats) == 0 {
		return len(text)
	}
	cut := len(text)
	for range 4 {
		next := r.partialStart(text[:cut])
		if next == cut {
			break
		}
		cut = next
	}
	return cut
}

func (r *Redactor) partialStart(text string) int {
	cut := len(text)
	var v *view
	for layer := 0; ; layer++ {
		cur := text
		if v != nil {
			cur = v.text
		}
		if i := incompleteEscape(cur); i < len(cur) {
			cut = min(cut, v.orig(i))
		}
		for _, p := range r.pats {
			for k := min(len(p.s)-1, len(cur)); k >= 2; k-- {
				if p.matches(cur[len(cur)-k:]) {
					cut = min(cut, v.orig(len(cur)-k))
					break
				}
			}
		}
		if layer == 3 {
			return cut
		}
		if v = r.decode(cur, v); v == nil {
			return cut
		}
	}
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
