package auth

// The failure record: a failed refresh is written to the bucket so that
// replicas waiting on the lease holder end their wait with its error.

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

type failRecord struct {
	At     int64  `json:"at_ms"`
	Reason string `json:"reason"`
	Status int    `json:"auth_status,omitempty"`
	Body   string `json:"auth_body,omitempty"`
}

func (m *Manager) recordFailure(id string, err error) {
	rec := failRecord{At: m.now().UnixMilli(), Reason: err.Error()}
	var aerr *AuthError
	if errors.As(err, &aerr) {
		rec.Status, rec.Body = aerr.Status, aerr.Body
	}
	data, _ := json.Marshal(rec)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = m.kv.Put(ctx, failKeyPrefix+id, data)
}

// failureSince returns the refresh failure of id recorded at or after
// start, as an *AuthError, or nil.
func (m *Manager) failureSince(ctx context.Context, id string, start time.Time) error {
	e, err := m.kv.Get(ctx, failKeyPrefix+id)
	if err != nil {
		return nil
	}
	var fr failRecord
	if json.Unmarshal(e.Value(), &fr) != nil || fr.At < start.UnixMilli() {
		return nil
	}
	return &AuthError{Status: fr.Status, Body: fr.Body, Reason: fr.Reason}
}
