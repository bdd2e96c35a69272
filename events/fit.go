package events

import "unicode/utf8"

// FitIn makes the encoded result take at most limit bytes (a message must
// fit the server's max_payload): it cuts the response body at a character
// boundary, setting Response.Truncated, and drops the response headers if
// the result does not fit even without a body. It reports whether the
// result fits. Most results are far below the limit and are not encoded
// here: every byte of a string encodes to at most 6.
func (r *Result) FitIn(limit int) bool {
	if r.bound() <= limit {
		return true
	}
	scratch := r.AppendJSON(make([]byte, 0, 4096))
	if len(scratch) <= limit {
		return true
	}
	if r.Response == nil {
		return false
	}
	body := r.Response.Body
	r.Response.Body, r.Response.Truncated = "", true
	base := len(r.AppendJSON(scratch[:0]))
	if base > limit {
		r.Response.Headers = nil
		if base = len(r.AppendJSON(scratch[:0])); base > limit {
			return false
		}
	}
	// The longest prefix of body whose encoding fits in what is left.
	room := limit - base
	lo, hi := 0, len(body)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if len(appendString(scratch[:0], body[:mid]))-2 <= room {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	for lo > 0 && lo < len(body) && !utf8.RuneStart(body[lo]) {
		lo--
	}
	r.Response.Body = body[:lo]
	return true
}

// bound is at least the encoded size of r.
func (r *Result) bound() int {
	n := 2048 + len(r.Context) + 6*(len(r.TriggerID)+len(r.ActionID)+len(r.Source)+len(r.TokenID))
	if r.Error != nil {
		n += 6 * (len(r.Error.Code) + len(r.Error.Message))
	}
	if r.Response != nil {
		n += 6 * len(r.Response.Body)
		for k, v := range r.Response.Headers {
			n += 6*(len(k)+len(v)) + 8
		}
	}
	return n
}
