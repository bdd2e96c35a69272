package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// decodeStrict decodes one JSON object of a request into v: unknown fields
// (other than those in ignore, which replies carry and clients may send
// back), trailing data and wrong types are refused with a message that
// says which. An empty body is {}.
func decodeStrict(data []byte, v any, ignore ...string) error {
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	var raw json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return badJSON(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &Error{Code: CodeBadRequest, Message: "request has data after its JSON object"}
	}
	if len(ignore) > 0 && bytes.HasPrefix(raw, []byte("{")) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return badJSON(err)
		}
		for _, k := range ignore {
			delete(m, k)
		}
		raw, _ = json.Marshal(m)
	}
	dec = json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badJSON(err)
	}
	return nil
}

func badJSON(err error) *Error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	return &Error{Code: CodeBadRequest, Message: "request is not valid: " + msg}
}
