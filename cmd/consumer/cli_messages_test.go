package main

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"customactions/internal/natstest"
)

// goInternals are what a CLI message must not show: Go type names, package
// functions and raw NATS API codes.
var goInternals = regexp.MustCompile(`Go value|events\.|strconv\.|envconfig|err_code=|code=404|(^|\s)json: `)

func TestCLIMessagesNameTheFileFieldOrSetting(t *testing.T) {
	t.Parallel()
	array := writeFile(t, "array.json", `[{"action_id":"a"}]`)
	wrongType := writeFile(t, "wrong.json", `{"action_id": 5, "request": {"url": "https://x.example"}}`)
	broken := writeFile(t, "broken.json", `{"action_id": "a",`)
	tests := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"trigger file of an array", nil, []string{"trigger", "-f", array},
			[]string{array, "must hold one trigger as a JSON object, not an array"}},
		{"trigger file with a wrong type", nil, []string{"trigger", "-f", wrongType},
			[]string{wrongType, `the field "action_id" must be a string, not a number`}},
		{"trigger file cut short", nil, []string{"trigger", "-f", broken},
			[]string{broken, "is not valid JSON"}},
		{"a number setting", []string{"ACTIONS_WORKERS", "many"}, []string{"tokens", "list"},
			[]string{`ACTIONS_WORKERS="many"`, "not a whole number", "the default is 1024"}},
		{"a duration setting", []string{"ACTIONS_ACK_WAIT", "30"}, []string{"logs"},
			[]string{`ACTIONS_ACK_WAIT="30"`, "a number needs its unit", "the default is 30s"}},
		{"a setting without default", []string{"ACTIONS_ACTION_CONCURRENCY", "x"}, []string{"dead", "list"},
			[]string{`ACTIONS_ACTION_CONCURRENCY="x"`, "leave it empty for the default"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := cli(t, newEnv(tc.env...), tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if m := goInternals.FindString(err.Error()); m != "" {
				t.Errorf("error %q shows Go internals (%q)", err, m)
			}
		})
	}
}

// TestCLIRefusesWhatItWouldIgnore: arguments a command does not take, and
// an output format it does not have, are refused instead of ignored.
func TestCLIRefusesWhatItWouldIgnore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"dead replay without arguments", []string{"dead", "replay"}, "give the sequence numbers to replay"},
		{"dead replay of a typo", []string{"dead", "replay", "12x"}, `"12x" is not a sequence number`},
		{"dead list with an argument", []string{"dead", "list", "x"}, `unexpected argument "x"`},
		{"logs in yaml", []string{"logs", "-o", "yaml"}, `-o "yaml": use -o text (the default) or -o json`},
		{"logs of two actions", []string{"logs", "a", "b"}, `unexpected argument "b": give at most one action id`},
		{"tokens list in yaml", []string{"tokens", "list", "-o", "yaml"}, `-o "yaml"`},
		{"tokens get of two ids", []string{"tokens", "get", "a", "b"}, `unexpected argument "b": give one token id`},
		{"tokens delete of two ids", []string{"tokens", "delete", "a", "b"}, `unexpected argument "b"`},
		{"tokens list with an argument", []string{"tokens", "list", "x"}, `unexpected argument "x": tokens list takes none`},
		{"tokens save with an argument", []string{"tokens", "save", "-f", "t.json", "x"}, `unexpected argument "x"`},
		{"breakers reset of two actions", []string{"breakers", "reset", "a", "b"}, `unexpected argument "b": give one action id`},
		{"breakers list with an argument", []string{"breakers", "list", "x"}, `unexpected argument "x"`},
		{"trigger with an argument", []string{"trigger", "-action", "a", "extra"}, `unexpected argument "extra"`},
		{"settings with an argument", []string{"settings", "x"}, `unexpected argument "x"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// NATS_URL points nowhere: a command that got past its
			// arguments would fail to connect instead.
			_, _, err := cli(t, newEnv("NATS_URL", "nats://127.0.0.1:1"), tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.want)
			}
		})
	}
}

func TestSettingsPrintsEffectiveValuesMasked(t *testing.T) {
	t.Parallel()
	secrets := []string{"nats-pass-hunter2", "ZW5jcnlwdGlvbi1rZXktMzItYnl0ZXMtbG9uZyEhISE=", "b2xkLWtleQ==", "ui-pass-correct-horse", "urlpass"}
	env := newEnv("ACTIONS_WORKERS", "8", "NATS_PASSWORD", secrets[0], "ACTIONS_ENCRYPTION_KEY", secrets[1],
		"ACTIONS_ENCRYPTION_OLD_KEYS", secrets[2], "ACTIONS_ADMIN_PASSWORD", secrets[3],
		"NATS_URL", "nats://u:"+secrets[4]+"@127.0.0.1:4222", "NATS_NKEY", "/etc/actions/seed.nk", "NATS_CREDS", "/etc/actions/user.creds")
	out, _, err := cli(t, env, "settings")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = l
		}
	}
	for name, want := range map[string][]string{
		"VARIABLE":                    {"VALUE", "DEFAULT"},
		"ACTIONS_WORKERS":             {" 8 ", " 1024 "},
		"ACTIONS_ACK_WAIT":            {"30s (default)"},
		"NATS_PASSWORD":               {"**** (set)"},
		"ACTIONS_ENCRYPTION_KEY":      {"**** (set)"},
		"ACTIONS_ENCRYPTION_OLD_KEYS": {"**** (set)"},
		"ACTIONS_ADMIN_PASSWORD":      {"**** (set)"},
		"NATS_URL":                    {"nats://****@127.0.0.1:4222"},
		"NATS_NKEY":                   {"/etc/actions/seed.nk"},
		"NATS_CREDS":                  {"/etc/actions/user.creds"},
		"ACTIONS_HTTP_ADDR":           {" - "},
	} {
		for _, w := range want {
			if !strings.Contains(lines[name], w) {
				t.Errorf("settings line of %s = %q, want it to show %q", name, lines[name], w)
			}
		}
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("settings printed the secret %q", s)
		}
	}
	_, _, err = cli(t, newEnv("ACTIONS_WORKERS", "many"), "settings")
	if err == nil || !strings.Contains(err.Error(), "ACTIONS_WORKERS") {
		t.Errorf("settings with a bad value: %v, want it to name ACTIONS_WORKERS", err)
	}
}

// TestCLIMessagesWithoutTheService: against a NATS server where the service
// never ran, the tools say what is missing instead of NATS's errors.
func TestCLIMessagesWithoutTheService(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	env := newEnv("NATS_URL", srv.ClientURL())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tokens", "list"}, "no consumer answers admin requests on actions.admin.tokens.list: is the service running"},
		{[]string{"trigger", "-action", "a", "-url", "https://api.example.com/", "-wait", "0"}, "no stream takes actions.trigger.inbox.a: has the service started"},
		{[]string{"logs"}, "there is no log stream ACTIONS_LOGS"},
		{[]string{"dead", "list"}, "there is no dead-letter stream ACTIONS_DEAD"},
	} {
		_, errOut, err := cli(t, env, tc.args...)
		msg := errOut
		if err != nil {
			msg += err.Error()
		}
		if !strings.Contains(msg, tc.want) || goInternals.MatchString(msg) || strings.Contains(msg, "nats:") {
			t.Errorf("%v: %q, want it to say %q and nothing of NATS's own errors", tc.args, msg, tc.want)
		}
	}
}

func TestDeadReplayAndArrayTokenFileAgainstService(t *testing.T) {
	t.Parallel()
	env := newEnv()
	startService(t, env)

	_, _, err := cli(t, env, "dead", "replay", "99")
	if err == nil || !strings.Contains(err.Error(), "there is no dead letter 99") || goInternals.MatchString(err.Error()) {
		t.Errorf("dead replay 99: %v", err)
	}
	out, _, err := cli(t, env, "dead", "replay", "all")
	if err != nil || !strings.Contains(out, "no dead letters to replay") {
		t.Errorf("dead replay all of none: %q %v", out, err)
	}

	two := writeFile(t, "two.json", `[
	  {"id":"one","name":"One","type":"text","value":"first-secret-value-1111","header":"Authorization"},
	  {"id":"two","name":"Two","type":"text","value":"second-secret-value-2222","header":"X-Key"}]`)
	out, errOut, err := cli(t, env, "tokens", "save", "-f", two)
	if err != nil || !strings.Contains(out, "saved token 1 of 2 (one)") || !strings.Contains(out, "saved token 2 of 2 (two)") {
		t.Errorf("tokens save of an array: %q %q %v", out, errOut, err)
	}
	out, _, _ = cli(t, env, "tokens", "list")
	if !strings.Contains(out, "one") || !strings.Contains(out, "two") {
		t.Errorf("tokens list after saving an array: %q", out)
	}
	mixed := writeFile(t, "mixed.json", `[{"id":"three","type":"text"},
	  {"id":"four","name":"Four","type":"text","value":"fourth-secret-value-4444","header":"X-Key"}]`)
	out, errOut, err = cli(t, env, "tokens", "save", "-f", mixed)
	var code exitCode
	if !errors.As(err, &code) || code != 1 || !strings.Contains(errOut, "token 1 of 2 (three)") || !strings.Contains(errOut, "invalid_token") ||
		!strings.Contains(out, "saved token 2 of 2 (four)") || !strings.Contains(errOut, "1 of 2 tokens") {
		t.Errorf("tokens save of an array with an invalid token: %q %q %v", out, errOut, err)
	}
	_, _, err = cli(t, env, "tokens", "test", "-f", two)
	if err == nil || !strings.Contains(err.Error(), "array of 2 tokens; test takes one token") {
		t.Errorf("tokens test of an array: %v", err)
	}
}
