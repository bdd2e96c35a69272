package events_test

import (
	"errors"
	"fmt"

	"customactions/events"
)

// A producer's trigger is decoded and validated against the subject it
// came on; a bad one is an *InvalidError whose message says what is wrong.
func ExampleDecode() {
	subjects := events.NewSubjects("actions")
	data := []byte(`{"id":"trg-1","action_id":"create-order","source":"inbox","token_id":"shop",
		"request":{"method":"POST","url":"https://api.example.com/orders","timeout_ms":5000},
		"context":{"conversation_id":"c-42"}}`)
	t, err := events.Decode(subjects, "actions.trigger.inbox.create-order", data, events.Limits{})
	fmt.Println(t.ID, t.ActionID, t.Request.Method, t.Request.Timeout(), string(t.Context), err)

	_, err = events.Decode(subjects, "actions.trigger.inbox.create-order", []byte(`{"id":"trg-2","action_id":"create-order","source":"inbox","request":{"method":"POST","url":"ftp://x"}}`), events.Limits{})
	var inv *events.InvalidError
	fmt.Println(errors.As(err, &inv), inv.Message)
	// Output:
	// trg-1 create-order POST 5s {"conversation_id":"c-42"} <nil>
	// true request.url must be an absolute http or https URL, got scheme "ftp"
}

// A result is encoded without reflection, byte for byte what
// encoding/json writes; it goes to the result subject of its action.
func ExampleResult_AppendJSON() {
	r := &events.Result{TriggerID: "trg-1", ActionID: "create-order", Source: "inbox", Status: events.StatusSucceeded,
		HTTPStatus: 201, Attempts: 1, Response: &events.Response{Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"order":7}`}}
	fmt.Println(events.NewSubjects("actions").Result(r.ActionID))
	fmt.Println(string(r.AppendJSON(nil)))
	// Output:
	// actions.result.create-order
	// {"trigger_id":"trg-1","action_id":"create-order","source":"inbox","status":"succeeded","http_status":201,"response":{"headers":{"Content-Type":"application/json"},"body":"{\"order\":7}","truncated":false},"attempts":1,"token_refreshed":false,"error":null,"started_at":"","finished_at":"","duration_ms":0}
}
