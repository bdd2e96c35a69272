package auth

// The fetched-token record as stored in the bucket, sealed when a key is
// set.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

type fetchedRecord struct {
	Token      string `json:"token"`
	FetchedAt  int64  `json:"fetched_at_ms"`
	ExpiresAt  int64  `json:"expires_at_ms,omitempty"`
	ConfigHash string `json:"config_hash"`
	Holder     string `json:"fetched_by"`
}

// readUsable reads the shared record of tok and returns it when it may be
// used instead of a token of revision stale; otherwise it returns nil and
// the record's revision, for a compare-and-set.
func (m *Manager) readUsable(ctx context.Context, tok *Token, hash string, stale uint64) (*Fetched, uint64, error) {
	f, rev, err := m.read(ctx, tok.ID)
	if err != nil {
		return nil, 0, err
	}
	if m.usable(f, tok, hash, stale) {
		m.remember(tok.ID, f)
		return f, rev, nil
	}
	return nil, rev, nil
}

// read returns the shared record of id (nil when none) and its revision.
func (m *Manager) read(ctx context.Context, id string) (*Fetched, uint64, error) {
	e, err := m.kv.Get(ctx, fetchedKeyPrefix+id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read fetched token %s: %w", id, err)
	}
	f, err := m.decode(id, e.Value(), e.Revision())
	if err != nil {
		return nil, e.Revision(), nil // unreadable: treat as absent, overwrite it
	}
	return f, e.Revision(), nil
}

func (m *Manager) encode(id string, f *Fetched) ([]byte, error) {
	tok, err := m.sealer.Seal(f.Token.Reveal(), id+"/fetched")
	if err != nil {
		return nil, err
	}
	rec := fetchedRecord{Token: tok, FetchedAt: f.FetchedAt.UnixMilli(), ConfigHash: f.ConfigHash, Holder: m.holder}
	if !f.ExpiresAt.IsZero() {
		rec.ExpiresAt = f.ExpiresAt.UnixMilli()
	}
	return json.Marshal(rec)
}

func (m *Manager) decode(id string, data []byte, rev uint64) (*Fetched, error) {
	var rec fetchedRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, err
	}
	tok, err := m.sealer.Open(rec.Token, id+"/fetched")
	if err != nil {
		return nil, err
	}
	f := &Fetched{Token: Secret(tok), FetchedAt: time.UnixMilli(rec.FetchedAt), Revision: rev, ConfigHash: rec.ConfigHash}
	if rec.ExpiresAt != 0 {
		f.ExpiresAt = time.UnixMilli(rec.ExpiresAt)
	}
	return f, nil
}
