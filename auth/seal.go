package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// sealedPrefix starts every encrypted field: enc:v1:<key id>:<base64>.
const sealedPrefix = "enc:v1:"

// ErrNoKey is returned when a sealed value names a key that the Sealer does
// not hold.
var ErrNoKey = errors.New("no encryption key for this value")

// Sealer encrypts secret fields at rest with AES-256-GCM. It seals with its
// current key and opens with the current key or any older one, so keys can
// be rotated: add the new key, move the old one to the old keys, and values
// written before keep working. A nil *Sealer stores values in the clear.
type Sealer struct {
	currentID string
	keys      map[string]cipher.AEAD
}

// NewSealer returns a Sealer from a base64 32-byte current key and older
// keys. An empty current key returns nil (no encryption) unless old keys
// are given, which is an error.
func NewSealer(current string, old []string) (*Sealer, error) {
	if current == "" {
		if len(old) > 0 {
			return nil, errors.New("old encryption keys are set without a current key")
		}
		return nil, nil
	}
	s := &Sealer{keys: map[string]cipher.AEAD{}}
	for i, k := range append([]string{current}, old...) {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("encryption key %d is not 32 bytes in base64", i+1)
		}
		block, _ := aes.NewCipher(raw)
		aead, _ := cipher.NewGCM(block)
		sum := sha256.Sum256(raw)
		id := hex.EncodeToString(sum[:4])
		if i == 0 {
			s.currentID = id
		}
		s.keys[id] = aead
	}
	return s, nil
}

// Seal encrypts v, bound to aad (the token id and field name, so a sealed
// value cannot be moved to another token or field). Empty stays empty.
func (s *Sealer) Seal(v, aad string) (string, error) {
	if s == nil || v == "" {
		return v, nil
	}
	aead := s.keys[s.currentID]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	ct := aead.Seal(nonce, nonce, []byte(v), []byte(aad))
	return sealedPrefix + s.currentID + ":" + base64.RawStdEncoding.EncodeToString(ct), nil
}

// Open decrypts a value written by Seal with the same aad. A value that is
// not sealed is returned as it is (written before a key was set).
func (s *Sealer) Open(v, aad string) (string, error) {
	rest, ok := strings.CutPrefix(v, sealedPrefix)
	if !ok {
		return v, nil
	}
	id, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return "", errors.New("open: malformed sealed value")
	}
	if s == nil {
		return "", fmt.Errorf("open: %w (key %s; set ACTIONS_ENCRYPTION_KEY)", ErrNoKey, id)
	}
	aead, ok := s.keys[id]
	if !ok {
		return "", fmt.Errorf("open: %w (key %s; add it to ACTIONS_ENCRYPTION_OLD_KEYS)", ErrNoKey, id)
	}
	ct, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(ct) < aead.NonceSize() {
		return "", errors.New("open: malformed sealed value")
	}
	pt, err := aead.Open(nil, ct[:aead.NonceSize()], ct[aead.NonceSize():], []byte(aad))
	if err != nil {
		return "", errors.New("open: the value does not decrypt with its key (tampered, or moved between fields)")
	}
	return string(pt), nil
}
