package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestFetchErrors(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch r.URL.Path {
		case "/busy":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			fmt.Fprint(w, `{"token":"abc-secret-123"}`)
		}
	}))
	t.Cleanup(srv.Close)
	tok := func(path string) *Token {
		t := &Token{ID: "t", Type: TypeHTTP, TokenPath: "access_token", Request: &AuthRequest{Method: "POST", URL: srv.URL + path}}
		t.Normalize()
		return t
	}

	_, err := NewFetcher().Fetch(t.Context(), tok("/wrong-path"))
	var aerr *AuthError
	if !errors.As(err, &aerr) || !errors.Is(err, ErrNotInResponse) || aerr.Status != 200 {
		t.Errorf("a token_path that finds nothing: %v, want an *AuthError wrapping ErrNotInResponse", err)
	}

	calls.Store(0)
	start := time.Now()
	_, err = NewFetcher(WithRetryWindow(0)).Fetch(t.Context(), tok("/busy"))
	if !errors.As(err, &aerr) || aerr.Status != 503 || calls.Load() != 1 || time.Since(start) > 2*time.Second {
		t.Errorf("no retry window: %v after %d calls, want one 503", err, calls.Load())
	}
	calls.Store(0)
	_, _ = NewFetcher(WithRetryWindow(400*time.Millisecond)).Fetch(t.Context(), tok("/busy"))
	if calls.Load() < 2 {
		t.Errorf("a 503 within the retry window was tried %d times, want it tried again", calls.Load())
	}
}
