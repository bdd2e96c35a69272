package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"customactions/auth"
)

// importTokens saves the tokens of a JSON file (one token or an array) at
// start-up, for deployments that keep token configs with their manifests
// (a mounted Secret) and for load runs. Each is validated and, for an HTTP
// token, must pass its test request, exactly as tokens.save.
func importTokens(ctx context.Context, path string, store *auth.Store, mgr *auth.Manager, fetcher *auth.Fetcher, log *slog.Logger) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("ACTIONS_TOKENS_FILE: %w", err)
	}
	var tokens []*auth.Token
	if strings.HasPrefix(strings.TrimSpace(string(data)), "[") {
		err = json.Unmarshal(data, &tokens)
	} else {
		var t auth.Token
		err = json.Unmarshal(data, &t)
		tokens = []*auth.Token{&t}
	}
	if err != nil {
		return fmt.Errorf("ACTIONS_TOKENS_FILE %s: %w", path, err)
	}
	for _, t := range tokens {
		t.Normalize()
		if err := t.Validate(); err != nil {
			return fmt.Errorf("ACTIONS_TOKENS_FILE %s: token %q: %w", path, t.ID, err)
		}
		if t.Type == auth.TypeHTTP {
			res, err := fetcher.Test(ctx, t)
			switch {
			case err != nil:
				return fmt.Errorf("ACTIONS_TOKENS_FILE: token %s: test request: %w", t.ID, err)
			case res.Status < 200 || res.Status > 299:
				return fmt.Errorf("ACTIONS_TOKENS_FILE: token %s: the auth endpoint answered %d", t.ID, res.Status)
			case res.PathErr != nil:
				return fmt.Errorf("ACTIONS_TOKENS_FILE: token %s: token_path: %w", t.ID, res.PathErr)
			}
		}
		prev, err := store.Put(ctx, t)
		if err != nil {
			return err
		}
		if prev != nil && prev.ConfigHash() != t.ConfigHash() {
			if err := mgr.Forget(ctx, t.ID); err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("drop cached fetched token", "token_id", t.ID, "err", err)
			}
		}
		log.Info("token imported", "token_id", t.ID, "type", t.Type)
	}
	return nil
}
