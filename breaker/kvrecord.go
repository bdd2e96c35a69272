package breaker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// errContended: a record kept changing under every compare-and-set tried.
var errContended = errors.New("too many conflicting writes")

// updateRecord reads the JSON record at key (the zero T when it is absent
// or unreadable), lets change edit it, and writes it back by
// compare-and-set on the revision read, reading again after a conflict,
// at most tries times (then errContended). change returns false to leave
// the record as it is. updateRecord reports whether it wrote.
func updateRecord[T any](ctx context.Context, kv KV, key string, tries int, change func(rec *T) bool) (bool, error) {
	for range tries {
		var rec T
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return false, fmt.Errorf("read %s: %w", key, err)
		default:
			rev = e.Revision()
			_ = json.Unmarshal(e.Value(), &rec) // unreadable: start from the zero record
		}
		if !change(&rec) {
			return false, nil
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return false, err
		}
		if rev == 0 {
			_, err = kv.Create(ctx, key, data)
		} else {
			_, err = kv.Update(ctx, key, data, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("write %s: %w", key, err)
		}
		return true, nil
	}
	return false, errContended
}
