package events

import (
	"strings"
	"testing"
)

func TestSensitiveHeaders(t *testing.T) {
	t.Parallel()
	s := NewSubjects("actions")
	tr, err := Decode(s, "actions.trigger.bot.act", []byte(`{"id":"a","action_id":"act","source":"bot","request":{"method":"GET","url":"http://x/y","headers":{"X-Signature":"s"},"sensitive_headers":["X-Signature"]}}`), Limits{})
	if err != nil || len(tr.Request.SensitiveHeaders) != 1 || tr.Request.SensitiveHeaders[0] != "X-Signature" {
		t.Errorf("decoded %+v, %v", tr.Request, err)
	}
	_, err = Decode(s, "actions.trigger.bot.act", []byte(`{"id":"a","action_id":"act","source":"bot","request":{"method":"GET","url":"http://x/y","sensitive_headers":["X Sig"]}}`), Limits{})
	if err == nil || !strings.Contains(err.Error(), "sensitive_headers") {
		t.Errorf("an invalid sensitive header name: %v", err)
	}
}
