package events

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// The hot path publishes a result and a log event per trigger; these
// encoders write them without reflection. The output is what
// encoding/json writes for the same values (the tests check it), so
// readers see no difference.

// AppendJSON appends the JSON encoding of r to b.
func (r *Result) AppendJSON(b []byte) []byte {
	b = append(b, `{"trigger_id":`...)
	b = appendString(b, r.TriggerID)
	b = append(b, `,"action_id":`...)
	b = appendString(b, r.ActionID)
	b = append(b, `,"source":`...)
	b = appendString(b, r.Source)
	if r.TokenID != "" {
		b = append(b, `,"token_id":`...)
		b = appendString(b, r.TokenID)
	}
	b = append(b, `,"status":`...)
	b = appendString(b, r.Status)
	b = append(b, `,"http_status":`...)
	b = strconv.AppendInt(b, int64(r.HTTPStatus), 10)
	b = append(b, `,"response":`...)
	if r.Response == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"headers":`...)
		b = appendStringMap(b, r.Response.Headers)
		b = append(b, `,"body":`...)
		b = appendString(b, r.Response.Body)
		b = append(b, `,"truncated":`...)
		b = strconv.AppendBool(b, r.Response.Truncated)
		b = append(b, '}')
	}
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(r.Attempts), 10)
	b = append(b, `,"token_refreshed":`...)
	b = strconv.AppendBool(b, r.TokenRefreshed)
	b = append(b, `,"error":`...)
	b = appendError(b, r.Error)
	b = append(b, `,"started_at":`...)
	b = appendString(b, r.StartedAt)
	b = append(b, `,"finished_at":`...)
	b = appendString(b, r.FinishedAt)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, r.DurationMS, 10)
	if r.RetryAfterMS != 0 {
		b = append(b, `,"retry_after_ms":`...)
		b = strconv.AppendInt(b, r.RetryAfterMS, 10)
	}
	if len(r.Context) > 0 {
		b = append(b, `,"context":`...)
		b = appendRaw(b, r.Context)
	}
	if r.EndUserID != "" {
		b = append(b, `,"end_user_id":`...)
		b = appendString(b, r.EndUserID)
	}
	if r.AuthorizationURL != "" {
		b = append(b, `,"authorization_url":`...)
		b = appendString(b, r.AuthorizationURL)
	}
	return append(b, '}')
}

// AppendJSON appends the JSON encoding of e to b.
func (e *LogEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"time":`...)
	b = appendString(b, e.Time)
	b = append(b, `,"level":`...)
	b = appendString(b, e.Level)
	b = append(b, `,"event":`...)
	b = appendString(b, e.Event)
	b = append(b, `,"action_id":`...)
	b = appendString(b, e.ActionID)
	if e.TriggerID != "" {
		b = append(b, `,"trigger_id":`...)
		b = appendString(b, e.TriggerID)
	}
	if e.TokenID != "" {
		b = append(b, `,"token_id":`...)
		b = appendString(b, e.TokenID)
	}
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message)
	if len(e.Details) > 0 {
		b = append(b, `,"details":{`...)
		keys := make([]string, 0, len(e.Details))
		for k := range e.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendAny(b, e.Details[k])
		}
		b = append(b, '}')
	}
	if len(e.Context) > 0 {
		b = append(b, `,"context":`...)
		b = appendRaw(b, e.Context)
	}
	return append(b, '}')
}

func appendError(b []byte, e *Error) []byte {
	if e == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"code":`...)
	b = appendString(b, e.Code)
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message)
	return append(b, '}')
}

func appendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

// appendAny writes the common detail values directly and hands anything
// else (including values with their own MarshalJSON, such as secrets) to
// encoding/json.
func appendAny(b []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		return appendString(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	case bool:
		return strconv.AppendBool(b, x)
	case nil:
		return append(b, "null"...)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, data...)
}

// appendRaw writes a raw JSON value as encoding/json does for a
// json.RawMessage: compacted.
func appendRaw(b []byte, raw json.RawMessage) []byte {
	data, err := raw.MarshalJSON()
	if err != nil {
		return append(b, "null"...)
	}
	if json.Valid(data) {
		var buf []byte
		if c, err := compact(data); err == nil {
			buf = c
		} else {
			buf = data
		}
		return append(b, buf...)
	}
	return append(b, "null"...)
}

func compact(data []byte) ([]byte, error) {
	// The common case has no insignificant white space: skip the copy.
	clean := true
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\n' || c == '\t' || c == '\r'):
			clean = false
		}
		if !clean {
			break
		}
	}
	if clean {
		return data, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

const hex = "0123456789abcdef"

// appendString writes s as a JSON string the way encoding/json does:
// HTML-sensitive characters and U+2028/U+2029 escaped, invalid UTF-8
// replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
