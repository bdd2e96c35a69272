package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
)

// tokenArray reports whether data (the file name) is a JSON array of
// tokens, as ACTIONS_TOKENS_FILE may be, and returns its items.
func tokenArray(name string, data []byte) ([]json.RawMessage, bool, error) {
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '[' {
		return nil, false, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, true, describeJSONError(name, "an array of tokens", err)
	}
	if len(list) == 0 {
		return nil, true, fmt.Errorf("%s holds an empty array: no token to save", name)
	}
	return list, true, nil
}

// saveEach saves the tokens of an array file one by one through the
// tokens.save admin request, as the start-up import does, and reports each.
// It goes on after a failure; the command fails if any did.
func (a *adminCommand) saveEach(ctx context.Context, name string, list []json.RawMessage, stdout, stderr io.Writer) error {
	s, err := loadSettings(a.getenv)
	if err != nil {
		return err
	}
	failed := 0
	for i, item := range list {
		var head struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(item, &head)
		label := fmt.Sprintf("token %d of %d", i+1, len(list))
		if head.ID != "" {
			label += fmt.Sprintf(" (%s)", head.ID)
		}
		reply, err := adminRequest(ctx, s, "tokens.save", []byte(item))
		if *a.output == "json" && reply != nil {
			printJSON(stdout, reply)
		}
		if err != nil {
			failed++
			fmt.Fprintf(stderr, "consumer tokens save: %s of %s: %v\n", label, name, err)
			continue
		}
		if *a.output != "json" {
			fmt.Fprintf(stdout, "saved %s\n", label)
		}
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "consumer tokens save: %d of %d tokens of %s not saved\n", failed, len(list), name)
		return exitCode(1)
	}
	return nil
}
