package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"customactions/admin"
)

// importTokens saves the tokens of a JSON file (one token or an array) at
// start-up, for deployments that keep token configs with their manifests
// (a mounted Secret) and for load runs. Each is saved exactly as
// tokens.save saves it (admin.Service.ImportTokens).
func importTokens(ctx context.Context, path string, adm *admin.Service, log *slog.Logger) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("ACTIONS_TOKENS_FILE: %w", err)
	}
	saved, err := adm.ImportTokens(ctx, data)
	for _, t := range saved {
		log.Info("token imported", "token_id", t.ID, "type", t.Type)
	}
	if err != nil {
		return fmt.Errorf("ACTIONS_TOKENS_FILE %s: %w", path, err)
	}
	return nil
}
