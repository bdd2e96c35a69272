package auth

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/kvcache"
	"customactions/internal/kvwatch"
)

// ErrTokenNotFound is returned when no token has the id.
var ErrTokenNotFound = errors.New("token not found")

// ErrTokenUnreadable is returned when a stored token cannot be decoded or
// decrypted (for example under a key that is no longer configured).
var ErrTokenUnreadable = errors.New("stored token cannot be read")

// KV is the part of a JetStream KV bucket that this package uses;
// jetstream.KeyValue satisfies it.
type KV interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error
	WatchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error)
	Watch(ctx context.Context, keys string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error)
}

// record is a token as stored: the same fields as Token with the secrets as
// plain strings, sealed when a key is set.
type record struct {
	ID            string             `json:"id"`
	Name          string             `json:"name"`
	Description   string             `json:"description"`
	Type          string             `json:"type"`
	Value         string             `json:"value,omitempty"`
	Prefix        string             `json:"prefix"`
	Header        string             `json:"header"`
	Request       *authRequestRecord `json:"request,omitempty"`
	TokenPath     string             `json:"token_path,omitempty"`
	ExpiresInPath string             `json:"expires_in_path,omitempty"`
	OAuth2        *oauth2Config      `json:"oauth2,omitempty"`
	UpdatedAt     string             `json:"updated_at,omitempty"`
}

// oauth2Config is OAuth2 as stored: the secrets sealed.
type oauth2Config struct {
	OAuth2
	ClientSecret string `json:"client_secret,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

type authRequestRecord struct {
	Method         string            `json:"method"`
	URL            string            `json:"url"`
	Headers        map[string]string `json:"headers,omitempty"`
	Params         map[string]string `json:"params,omitempty"`
	ParamsEncoding string            `json:"params_encoding,omitempty"`
	SecretFields   []string          `json:"secret_fields,omitempty"`
}

// Store keeps token configurations in the tokens bucket. It holds the
// tokens it used lately in memory (at most StoreCacheSize), read from KV on
// first use, and follows the keys of the bucket's changes so that a token
// another replica saved or deleted is read again: the bucket may hold a
// hundred thousand tokens, and none is read at start-up.
type Store struct {
	kv     KV
	sealer *Sealer
	now    func() time.Time
	cache  *kvcache.Cache[*Token]
}

// StoreOption configures a Store.
type StoreOption func(*Store)

// WithStoreCache sets how many tokens a Store keeps in memory (default
// kvcache.DefaultSize).
func WithStoreCache(n int) StoreOption { return func(s *Store) { s.cache = kvcache.New[*Token](n) } }

// NewStore returns a Store over kv; sealer may be nil (no encryption).
func NewStore(kv KV, sealer *Sealer, opts ...StoreOption) *Store {
	s := &Store{kv: kv, sealer: sealer, now: time.Now, cache: kvcache.New[*Token](0)}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Watch follows the keys of the bucket's changes until ctx ends: a cached
// token that another replica changed or deleted is dropped, and read again
// on its next use.
func (s *Store) Watch(ctx context.Context) error {
	return kvcache.FollowKeys(ctx, s.kv, ">", "tokens", func(e jetstream.KeyValueEntry) { s.cache.Invalidate(e.Key(), e.Revision()) })
}

// Cached is the number of tokens held in memory.
func (s *Store) Cached() int { return s.cache.Len() }

// Get returns the token with the id, or an error wrapping ErrTokenNotFound.
// A token used lately is answered from memory; another is read from KV.
func (s *Store) Get(ctx context.Context, id string) (*Token, error) {
	if t, _, ok := s.cache.Get(id); ok {
		return t, nil
	}
	return s.load(ctx, id)
}

// load reads the token id from KV and keeps it in memory.
func (s *Store) load(ctx context.Context, id string) (*Token, error) {
	epoch := s.cache.Begin()
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil, fmt.Errorf("token %s: %w", id, ErrTokenNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get token %s: %w", id, err)
	}
	t, err := s.decode(e.Value())
	if err != nil {
		return nil, fmt.Errorf("token %s: %w: %v", id, ErrTokenUnreadable, err)
	}
	s.cache.Add(id, t, e.Revision(), epoch)
	return t, nil
}

// List returns every token, sorted by id, read from KV. A token that cannot
// be read is listed with its id and the reason in its description.
func (s *Store) List(ctx context.Context) ([]*Token, error) {
	out, err := kvwatch.Collect(ctx, s.kv, func(e jetstream.KeyValueEntry) (*Token, bool) {
		t, err := s.decode(e.Value())
		if err != nil {
			// Listed, so an admin can see it and save or delete it.
			t = &Token{ID: e.Key(), Name: e.Key(), Description: fmt.Sprintf("%v: %v", ErrTokenUnreadable, err)}
		}
		return t, true
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	slices.SortFunc(out, func(a, b *Token) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Put stores t (normalized and validated by the caller) and returns it as
// stored. It returns the previous version, or nil.
func (s *Store) Put(ctx context.Context, t *Token) (prev *Token, err error) {
	prev, err = s.load(ctx, t.ID)
	if err != nil && !errors.Is(err, ErrTokenNotFound) {
		prev = nil // unreadable (for example under a lost key): overwrite it
	}
	t.UpdatedAt = s.now().UTC().Format(time.RFC3339)
	data, err := s.encode(t)
	if err != nil {
		return nil, err
	}
	rev, err := s.kv.Put(ctx, t.ID, data)
	if err != nil {
		return nil, fmt.Errorf("save token %s: %w", t.ID, err)
	}
	stored := *t
	stored.shared()
	s.cache.Put(t.ID, &stored, rev)
	return prev, nil
}

// Delete removes the token; it returns an error wrapping ErrTokenNotFound
// when there is none.
func (s *Store) Delete(ctx context.Context, id string) error {
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return fmt.Errorf("token %s: %w", id, ErrTokenNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete token %s: %w", id, err)
	}
	if err := s.kv.Delete(ctx, id, jetstream.LastRevision(e.Revision())); err != nil {
		return fmt.Errorf("delete token %s: %w", id, err)
	}
	s.cache.Drop(id)
	return nil
}

func (s *Store) encode(t *Token) ([]byte, error) {
	r := record{ID: t.ID, Name: t.Name, Description: t.Description, Type: t.Type, Prefix: t.Prefix,
		Header: t.Header, TokenPath: t.TokenPath, ExpiresInPath: t.ExpiresInPath, UpdatedAt: t.UpdatedAt}
	var err error
	if r.Value, err = s.sealer.Seal(t.Value.Reveal(), t.ID+"/value"); err != nil {
		return nil, err
	}
	if o := t.OAuth2; o != nil {
		r.OAuth2 = &oauth2Config{OAuth2: *o}
		r.OAuth2.OAuth2.ClientSecret, r.OAuth2.OAuth2.RefreshToken = "", ""
		if r.OAuth2.ClientSecret, err = s.sealer.Seal(o.ClientSecret.Reveal(), t.ID+"/oauth2/client_secret"); err != nil {
			return nil, err
		}
		if r.OAuth2.RefreshToken, err = s.sealer.Seal(o.RefreshToken.Reveal(), t.ID+"/oauth2/refresh_token"); err != nil {
			return nil, err
		}
	}
	if t.Request != nil {
		r.Request = &authRequestRecord{Method: t.Request.Method, URL: t.Request.URL, ParamsEncoding: t.Request.ParamsEncoding,
			SecretFields: t.Request.SecretFields}
		if r.Request.Headers, err = s.sealMap(t.Request.Headers, t.ID+"/header/"); err != nil {
			return nil, err
		}
		if r.Request.Params, err = s.sealMap(t.Request.Params, t.ID+"/param/"); err != nil {
			return nil, err
		}
	}
	return json.Marshal(r)
}

func (s *Store) decode(data []byte) (*Token, error) {
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode stored token: %w", err)
	}
	t := &Token{ID: r.ID, Name: r.Name, Description: r.Description, Type: r.Type, Prefix: r.Prefix,
		Header: r.Header, TokenPath: r.TokenPath, ExpiresInPath: r.ExpiresInPath, UpdatedAt: r.UpdatedAt}
	v, err := s.sealer.Open(r.Value, r.ID+"/value")
	if err != nil {
		return nil, err
	}
	t.Value = Secret(v)
	if r.OAuth2 != nil {
		o := r.OAuth2.OAuth2
		cs, err := s.sealer.Open(r.OAuth2.ClientSecret, r.ID+"/oauth2/client_secret")
		if err != nil {
			return nil, err
		}
		rt, err := s.sealer.Open(r.OAuth2.RefreshToken, r.ID+"/oauth2/refresh_token")
		if err != nil {
			return nil, err
		}
		o.ClientSecret, o.RefreshToken = Secret(cs), Secret(rt)
		t.OAuth2 = &o
	}
	if r.Request != nil {
		t.Request = &AuthRequest{Method: r.Request.Method, URL: r.Request.URL, ParamsEncoding: r.Request.ParamsEncoding,
			SecretFields: r.Request.SecretFields}
		if t.Request.Headers, err = s.openMap(r.Request.Headers, r.ID+"/header/"); err != nil {
			return nil, err
		}
		if t.Request.Params, err = s.openMap(r.Request.Params, r.ID+"/param/"); err != nil {
			return nil, err
		}
	}
	t.shared()
	return t, nil
}

func (s *Store) sealMap(m map[string]Secret, aad string) (map[string]string, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		sealed, err := s.sealer.Seal(v.Reveal(), aad+k)
		if err != nil {
			return nil, err
		}
		out[k] = sealed
	}
	return out, nil
}

func (s *Store) openMap(m map[string]string, aad string) (map[string]Secret, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]Secret, len(m))
	for k, v := range m {
		plain, err := s.sealer.Open(v, aad+k)
		if err != nil {
			return nil, err
		}
		out[k] = Secret(plain)
	}
	return out, nil
}
