package main

import (
	"strings"
	"testing"
)

func TestLimitsCLI(t *testing.T) {
	t.Parallel()
	env := newEnv()
	startService(t, env)
	out, _, err := cli(t, env, "limits", "set", "shop", "-rate", "12.5", "-max-concurrent", "4")
	if err != nil || !strings.Contains(out, "shop") || !strings.Contains(out, "12.5") || !strings.Contains(out, "13") {
		t.Fatalf("set: %q %v (want the burst filled to 13)", out, err)
	}
	if out, _, err = cli(t, env, "limits", "list"); err != nil || !strings.Contains(out, "shop") {
		t.Errorf("list: %q %v", out, err)
	}
	if out, _, err = cli(t, env, "limits", "get", "shop", "-o", "json"); err != nil || !strings.Contains(out, `"max_concurrent": 4`) {
		t.Errorf("get -o json: %q %v", out, err)
	}
	if _, errOut, err := cli(t, env, "limits", "set", "shop", "-rate", "-3"); err == nil || !strings.Contains(errOut, "rate") {
		t.Errorf("a negative rate: %q %v", errOut, err)
	}
	if out, _, err = cli(t, env, "limits", "delete", "shop"); err != nil || !strings.Contains(out, "deleted") {
		t.Errorf("delete: %q %v", out, err)
	}
	if _, errOut, err := cli(t, env, "limits", "get", "shop"); err == nil || !strings.Contains(errOut, "has no limits") {
		t.Errorf("get after delete: %q %v", errOut, err)
	}
}
