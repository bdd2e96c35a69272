package admin

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"customactions/breaker"
	"customactions/events"
)

// Queue is the queue group of admin requests: any replica answers.
const Queue = "actions-admin"

// Handle answers one admin request: verb is "tokens.save", "breakers.list"
// and so on, data its JSON body. The reply is JSON-encodable, with secrets
// masked; errors an admin can act on are *Error.
func (a *Service) Handle(ctx context.Context, verb string, data []byte) (any, error) {
	switch verb {
	case "tokens.test":
		return a.tokensTest(ctx, data)
	case "tokens.save":
		t, err := decodeToken(data)
		if err != nil {
			return nil, err
		}
		return a.SaveToken(ctx, t)
	case "tokens.get":
		id, err := decodeID(data, "id")
		if err != nil {
			return nil, err
		}
		return a.TokenView(ctx, id)
	case "tokens.list":
		if err := decodeStrict(data, &struct{}{}); err != nil {
			return nil, err
		}
		views, err := a.ListTokens(ctx)
		if err != nil {
			return nil, err
		}
		return map[string]any{"tokens": views}, nil
	case "tokens.delete":
		id, err := decodeID(data, "id")
		if err != nil {
			return nil, err
		}
		if err := a.DeleteToken(ctx, id); err != nil {
			return nil, err
		}
		return map[string]bool{"ok": true}, nil
	case "tokens.forget":
		id, err := decodeID(data, "id")
		if err != nil {
			return nil, err
		}
		had, err := a.ForgetToken(ctx, id)
		if err != nil {
			return nil, err
		}
		return map[string]bool{"ok": true, "had_fetched": had}, nil
	case "tokens.usage":
		id, err := decodeID(data, "id")
		if err != nil {
			return nil, err
		}
		return a.TokenUsage(ctx, id)
	case "tokens.connect":
		id, err := decodeID(data, "id")
		if err != nil {
			return nil, err
		}
		return a.ConnectToken(ctx, id)
	case "connections.list":
		var req ListRequest
		if err := decodeStrict(data, &req); err != nil {
			return nil, err
		}
		return a.ListConnections(ctx, req)
	case "connections.delete":
		var req struct {
			TokenID   string `json:"token_id"`
			EndUserID string `json:"end_user_id"`
		}
		if err := decodeStrict(data, &req); err != nil {
			return nil, err
		}
		return a.DeleteConnection(ctx, req.TokenID, req.EndUserID)
	case "triggers.rerun":
		var req struct {
			ActionID  string `json:"action_id"`
			TriggerID string `json:"trigger_id"`
		}
		if err := decodeStrict(data, &req); err != nil {
			return nil, err
		}
		return a.RerunTrigger(ctx, req.ActionID, req.TriggerID)
	case "dead.list":
		if err := decodeStrict(data, &struct{}{}); err != nil {
			return nil, err
		}
		d, err := a.deadLetters()
		if err != nil {
			return nil, err
		}
		list, err := d.List(ctx)
		if err != nil {
			return nil, err
		}
		return map[string]any{"dead_letters": list}, nil
	case "dead.replay", "dead.rerun":
		seq, err := decodeSeq(data)
		if err != nil {
			return nil, err
		}
		d, err := a.deadLetters()
		if err != nil {
			return nil, err
		}
		if verb == "dead.rerun" {
			return d.Rerun(ctx, seq)
		}
		return d.Replay(ctx, seq)
	case "breakers.list":
		if err := decodeStrict(data, &struct{}{}); err != nil {
			return nil, err
		}
		list, err := a.ListBreakers(ctx)
		if err != nil {
			return nil, err
		}
		return map[string]any{"breakers": list}, nil
	case "breakers.reset":
		id, err := decodeID(data, "action_id")
		if err != nil {
			return nil, err
		}
		return a.ResetBreaker(ctx, id)
	case "limits.set":
		var l breaker.Limits
		if err := decodeStrict(data, &l, "updated_at"); err != nil {
			return nil, err
		}
		return a.SetLimits(ctx, l)
	case "limits.get":
		id, err := decodeID(data, "action_id")
		if err != nil {
			return nil, err
		}
		return a.Limits(id)
	case "limits.list":
		if err := decodeStrict(data, &struct{}{}); err != nil {
			return nil, err
		}
		list, err := a.ListLimits(ctx)
		if err != nil {
			return nil, err
		}
		return map[string]any{"limits": list}, nil
	case "limits.delete":
		id, err := decodeID(data, "action_id")
		if err != nil {
			return nil, err
		}
		if err := a.DeleteLimits(ctx, id); err != nil {
			return nil, err
		}
		return map[string]bool{"ok": true}, nil
	default:
		return nil, errorf(CodeUnknown, "unknown admin request %q: known are tokens.test, tokens.save, tokens.get, tokens.list, tokens.delete, tokens.forget, tokens.usage, tokens.connect, connections.list, connections.delete, triggers.rerun, dead.list, dead.replay, dead.rerun, breakers.list, breakers.reset, limits.set, limits.get, limits.list and limits.delete", verb)
	}
}

// decodeID reads a request whose only field, named field, is an id.
func decodeID(data []byte, field string) (string, error) {
	var req map[string]string
	if err := decodeStrict(data, &req); err != nil {
		return "", err
	}
	id := req[field]
	delete(req, field)
	for k := range req {
		return "", errorf(CodeBadRequest, "request is not valid: unknown field %q (only %q)", k, field)
	}
	if !events.ValidID(id) {
		return "", errorf(CodeBadRequest, "%s %q must match ^[A-Za-z0-9_-]{1,128}$", field, id)
	}
	return id, nil
}

// Subscribe serves admin requests on nc in the queue group until the
// subscription is drained.
func (a *Service) Subscribe(nc *nats.Conn) (*nats.Subscription, error) {
	subjects := events.NewSubjects(a.prefix)
	return nc.QueueSubscribe(subjects.AdminWildcard(), Queue, func(m *nats.Msg) {
		go a.serve(m, strings.TrimPrefix(m.Subject, subjects.Prefix+".admin.")) // a test may take seconds
	})
}

func (a *Service) serve(m *nats.Msg, verb string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reply, err := a.Handle(ctx, verb, m.Data)
	var data []byte
	if err != nil {
		e := AsError(err)
		data, _ = json.Marshal(ErrorReply(e))
		a.log.Info("admin request refused", "request", verb, "code", e.Code, "message", e.Message)
	} else {
		data, _ = json.Marshal(reply)
		a.log.Info("admin request served", "request", verb)
	}
	if m.Reply != "" {
		_ = m.Respond(data)
	}
}
