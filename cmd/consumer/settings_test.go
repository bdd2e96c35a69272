package main

import (
	"strings"
	"testing"
	"time"

	"customactions/consumer"
)

// TestSettingsDefaultsAreTheConfigDefaults: the defaults written in the
// settings (what `consumer settings` and the README show) are the ones
// consumer.Config takes for a zero field, so there is one set of defaults.
func TestSettingsDefaultsAreTheConfigDefaults(t *testing.T) {
	t.Parallel()
	s, err := loadSettings(newEnv().getenv)
	if err != nil {
		t.Fatal(err)
	}
	got := s.consumerConfig()
	want := consumer.Config{}.WithDefaults()
	if got != want {
		t.Errorf("settings defaults give\n%+v\nconsumer.Config defaults are\n%+v", got, want)
	}
}

func TestLoadSettingsFromTheGivenEnvironment(t *testing.T) {
	t.Parallel()
	s, err := loadSettings(newEnv("ACTIONS_WORKERS", "8", "ACTIONS_ACK_WAIT", "45s", "ACTIONS_ALLOW_HOSTS", "a.example, *.b.example",
		"ACTIONS_BREAKER_FAILURE_RATIO", "0.25", "ACTIONS_ALLOW_PRIVATE_NETWORKS", "true", "ACTIONS_PREFETCH", "0",
		"ACTIONS_RESPONSE_BODY_CAP", "2048").getenv)
	if err != nil {
		t.Fatal(err)
	}
	if s.Workers != 8 || s.AckWait != 45*time.Second || strings.Join(s.AllowHosts, "|") != "a.example|*.b.example" ||
		s.BreakerRatio != 0.25 || !s.AllowPrivate || s.ResponseBodyCap != 2048 {
		t.Errorf("settings %+v", s)
	}
	if cfg := s.consumerConfig(); cfg.Prefetch != 0 {
		t.Errorf("ACTIONS_PREFETCH=0 gave a prefetch of %d, want none", cfg.Prefetch)
	}
	for _, tc := range []struct{ name, value, want string }{
		{"ACTIONS_WORKERS", "many", "ACTIONS_WORKERS=\"many\": not a whole number"},
		{"ACTIONS_ACK_WAIT", "30", "not a duration"},
		{"ACTIONS_ALLOW_PRIVATE_NETWORKS", "yes please", "not true or false"},
		{"ACTIONS_RESPONSE_BODY_CAP", "99999999999999999999", "not a whole number"},
		{"ACTIONS_PREFIX", "acme.prod", "ACTIONS_PREFIX"},
	} {
		if _, err := loadSettings(newEnv(tc.name, tc.value).getenv); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: %v, want an error saying %q", tc.name, tc.value, err, tc.want)
		}
	}
}

// TestSettingsSizedFromTheExpectedLoad: ACTIONS_EXPECTED_RATE and
// ACTIONS_EXPECTED_LATENCY size the capacity settings left empty
// (consumer.Size); a setting that is set is kept.
func TestSettingsSizedFromTheExpectedLoad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                                   string
		env                                    []string
		workers, actionConcurrency, maxPending int
	}{
		{"defaults", nil, 1024, 256, 4 * (1024 + 64)},
		{"8000/s at 265 ms", []string{"ACTIONS_EXPECTED_RATE", "8000", "ACTIONS_EXPECTED_LATENCY", "265ms"}, 4288, 3216, 4 * (4288 + 64)},
		{"workers set", []string{"ACTIONS_EXPECTED_RATE", "8000", "ACTIONS_EXPECTED_LATENCY", "265ms", "ACTIONS_WORKERS", "100"}, 100, 75, 4 * (100 + 64)},
		{"all set", []string{"ACTIONS_EXPECTED_RATE", "8000", "ACTIONS_EXPECTED_LATENCY", "265ms", "ACTIONS_WORKERS", "100",
			"ACTIONS_ACTION_CONCURRENCY", "7", "ACTIONS_MAX_ACK_PENDING", "300"}, 100, 7, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := loadSettings(newEnv(tc.env...).getenv)
			if err != nil {
				t.Fatal(err)
			}
			cfg := s.consumerConfig()
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			if cfg.Workers != tc.workers || cfg.ActionConcurrency != tc.actionConcurrency || cfg.MaxAckPending != tc.maxPending {
				t.Errorf("workers %d, action concurrency %d, max ack pending %d; want %d, %d, %d",
					cfg.Workers, cfg.ActionConcurrency, cfg.MaxAckPending, tc.workers, tc.actionConcurrency, tc.maxPending)
			}
		})
	}
}
