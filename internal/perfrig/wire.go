package perfrig

import "encoding/json"

// Trigger is what the load drivers publish: the fields of a trigger they
// set (PROTOCOL.md section 2).
type Trigger struct {
	ID       string          `json:"id"`
	ActionID string          `json:"action_id"`
	Mode     string          `json:"mode"`
	Source   string          `json:"source"`
	TokenID  string          `json:"token_id"`
	Request  Request         `json:"request"`
	Context  json.RawMessage `json:"context"`
}

// Request is the HTTP call of a Trigger.
type Request struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// Result is what the load drivers read of a result: its trigger, status,
// error code and the context the driver sent (its send time, and the API
// time the mock API reports).
type Result struct {
	TriggerID string `json:"trigger_id"`
	Status    string `json:"status"`
	Error     *struct {
		Code string `json:"code"`
	} `json:"error"`
	Context struct {
		SentNS int64 `json:"sent_ns"`
		APIMS  int64 `json:"api_ms"`
	} `json:"context"`
}
