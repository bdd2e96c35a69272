package main

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"customactions/consumer"
)

// settings are the environment variables of the service. Every one is in
// the README's table.
type settings struct {
	NATSURL      string `envconfig:"NATS_URL" desc:"comma-separated NATS server URLs; empty starts the embedded server"`
	NATSCreds    string `envconfig:"NATS_CREDS" desc:"credentials file (JWT + nkey seed)"`
	NATSNKey     string `envconfig:"NATS_NKEY" desc:"nkey seed file"`
	NATSUser     string `envconfig:"NATS_USER" desc:"user name"`
	NATSPassword string `envconfig:"NATS_PASSWORD" desc:"password"`
	NATSCA       string `envconfig:"NATS_CA" desc:"CA certificate file for TLS"`
	NATSCert     string `envconfig:"NATS_CERT" desc:"client certificate file for mutual TLS"`
	NATSKey      string `envconfig:"NATS_KEY" desc:"client key file for mutual TLS"`

	DataDir string `envconfig:"ACTIONS_DATA_DIR" default:"./data" desc:"the embedded server's store directory"`
	Listen  string `envconfig:"ACTIONS_NATS_LISTEN" default:"127.0.0.1:4222" desc:"the embedded server's client address"`
	Prefix  string `envconfig:"ACTIONS_PREFIX" default:"actions" desc:"subject prefix"`

	Replicas          int           `envconfig:"ACTIONS_REPLICAS" default:"1" desc:"replicas of streams and buckets (1 embedded, 3 on a cluster)"`
	Partitions        int           `envconfig:"ACTIONS_PARTITIONS" default:"0" desc:"trigger streams, 2 to 64, each with its own leader, to pass the rate one stream carries (PROTOCOL.md, Trigger partitions); the NATS account needs the matching subject mapping (the embedded server gets it); 0 is the one trigger stream"`
	ExpectedRate      float64       `envconfig:"ACTIONS_EXPECTED_RATE" desc:"triggers/s this process should sustain; with ACTIONS_EXPECTED_LATENCY it sizes the settings left empty: ACTIONS_WORKERS = 2 x rate x latency (in steps of 64, at least 64), ACTIONS_ACTION_CONCURRENCY = three quarters of it, ACTIONS_MAX_ACK_PENDING = 4 x (workers + prefetch) (CAPACITY.md, Sizing)"`
	ExpectedLatency   time.Duration `envconfig:"ACTIONS_EXPECTED_LATENCY" desc:"mean latency of the actions' APIs, tail included (e.g. 250ms for 200 ms with 5 % at 1-2 s); set with ACTIONS_EXPECTED_RATE"`
	Workers           int           `envconfig:"ACTIONS_WORKERS" default:"1024" desc:"triggers executed at once per process (workers start as they are needed, each a goroutine and an API connection); when empty and ACTIONS_EXPECTED_RATE is set, 2 x rate x latency"`
	ActionConcurrency int           `envconfig:"ACTIONS_ACTION_CONCURRENCY" desc:"triggers of one action executed at once per process (a bulkhead; more wait parked, holding no worker and not redelivered); empty is a quarter of ACTIONS_WORKERS, or three quarters with ACTIONS_EXPECTED_RATE"`
	Prefetch          int           `envconfig:"ACTIONS_PREFETCH" default:"64" desc:"triggers pulled ahead of the workers (a pull asks for the prefetch plus up to 256 free workers; buffered triggers get no InProgress, keep it small enough that they start within AckWait); 0 is none"`
	MaxAckPending     int           `envconfig:"ACTIONS_MAX_ACK_PENDING" desc:"triggers handed out and not yet acked, across all replicas (parked ones included), at least ACTIONS_WORKERS; empty is 4 x (workers + prefetch): room for four processes of this size"`
	AckWait           time.Duration `envconfig:"ACTIONS_ACK_WAIT" default:"30s" desc:"redelivery after a replica goes silent (triggers being executed are kept alive)"`
	MaxDeliver        int           `envconfig:"ACTIONS_MAX_DELIVER" default:"5" desc:"deliveries of a trigger before it is dead-lettered"`
	DefaultTimeout    time.Duration `envconfig:"ACTIONS_DEFAULT_TIMEOUT" default:"10s" desc:"per-attempt timeout when the trigger sets none"`
	MaxTimeout        time.Duration `envconfig:"ACTIONS_MAX_TIMEOUT" default:"60s" desc:"largest timeout_ms a trigger may ask for"`
	ResponseBodyCap   int64         `envconfig:"ACTIONS_RESPONSE_BODY_CAP" default:"1048576" desc:"bytes of response body kept in a result"`
	ResponseMemory    int64         `envconfig:"ACTIONS_RESPONSE_MEMORY" default:"67108864" desc:"bytes that large responses (over 64 KiB) may hold at once across all workers; each holds 3 x ACTIONS_RESPONSE_BODY_CAP plus its encoded result until stored, others wait"`
	ResultRetry       time.Duration `envconfig:"ACTIONS_RESULT_RETRY" default:"2m" desc:"how long storing a made result is retried before the trigger is handed back (which calls the action again)"`
	MaxTriggerBytes   int           `envconfig:"ACTIONS_MAX_TRIGGER_BYTES" default:"262144" desc:"largest trigger accepted"`
	ShutdownTimeout   time.Duration `envconfig:"ACTIONS_SHUTDOWN_TIMEOUT" default:"30s" desc:"time to finish in-flight triggers on SIGTERM"`
	RetentionMaxAge   time.Duration `envconfig:"ACTIONS_RETENTION" default:"168h" desc:"max age of results and log events"`
	DuplicateWindow   time.Duration `envconfig:"ACTIONS_DUPLICATE_WINDOW" default:"2m" desc:"deduplication window of triggers (Nats-Msg-Id) and results; nats-server keeps its ids in memory"`

	AllowPrivate  bool     `envconfig:"ACTIONS_ALLOW_PRIVATE_NETWORKS" default:"false" desc:"allow action and auth URLs on loopback/private addresses"`
	AllowHosts    []string `envconfig:"ACTIONS_ALLOW_HOSTS" desc:"hosts (or *.domain) allowed even on private addresses"`
	EncryptionKey string   `envconfig:"ACTIONS_ENCRYPTION_KEY" desc:"base64 32-byte key for secrets at rest"`
	OldKeys       []string `envconfig:"ACTIONS_ENCRYPTION_OLD_KEYS" desc:"comma-separated older keys, still used to decrypt"`

	BreakerWindow      time.Duration `envconfig:"ACTIONS_BREAKER_WINDOW" default:"60s" desc:"rolling window of the breaker's failure ratio"`
	BreakerMinCalls    int           `envconfig:"ACTIONS_BREAKER_MIN_CALLS" default:"10" desc:"calls in the window before the ratio can trip"`
	BreakerRatio       float64       `envconfig:"ACTIONS_BREAKER_FAILURE_RATIO" default:"0.5" desc:"failure ratio that opens the breaker"`
	BreakerConsecutive int           `envconfig:"ACTIONS_BREAKER_CONSECUTIVE" default:"5" desc:"consecutive failures that open the breaker"`
	BreakerCooldown    time.Duration `envconfig:"ACTIONS_BREAKER_COOLDOWN" default:"30s" desc:"first cool-down before a probe"`
	BreakerSlowCall    time.Duration `envconfig:"ACTIONS_BREAKER_SLOW_CALL" default:"5s" desc:"a live call running longer counts against its action's breaker as a failure, while still in flight"`
	MaxRetryAfter      time.Duration `envconfig:"ACTIONS_MAX_RETRY_AFTER" default:"1m" desc:"cap of the pause a 429 or 503 Retry-After asks for; every replica holds the action back that long"`
	BreakerMaxCooldown time.Duration `envconfig:"ACTIONS_BREAKER_MAX_COOLDOWN" default:"10m" desc:"cap of the doubling cool-down"`

	HTTPAddr      string        `envconfig:"ACTIONS_HTTP_ADDR" desc:"address of the metrics and health server (/metrics, /healthz, /readyz, the web UI); empty disables it"`
	Pprof         bool          `envconfig:"ACTIONS_PPROF" default:"false" desc:"serve Go profiles at /debug/pprof/ on ACTIONS_HTTP_ADDR; behind the web UI login when ACTIONS_ADMIN_PASSWORD is set"`
	AdminPassword string        `envconfig:"ACTIONS_ADMIN_PASSWORD" desc:"password of the web admin UI at /ui/ on ACTIONS_HTTP_ADDR; empty disables the UI"`
	PublicURL     string        `envconfig:"ACTIONS_PUBLIC_URL" desc:"the URL at which end users' browsers reach ACTIONS_HTTP_ADDR: connect links (/connect/<state>) and the OAuth callback (/oauth/callback) of authorization_code tokens; empty disables connecting"`
	ConnectTTL    time.Duration `envconfig:"ACTIONS_CONNECT_TTL" default:"10m" desc:"how long a connect link (authorization_url) stays valid; it is single use"`
	KeepTriggers  int64         `envconfig:"ACTIONS_KEEP_TRIGGERS" default:"0" desc:"bytes of recent triggers kept (copies, in stream ACTIONS_RECENT, the oldest dropped first) so that an admin can re-run a logged trigger as a test; 0 keeps none"`
	TokensFile    string        `envconfig:"ACTIONS_TOKENS_FILE" desc:"JSON file of tokens (one or an array) saved at start-up, each validated and tested like tokens.save"`
	CPUProfile    string        `envconfig:"ACTIONS_CPU_PROFILE" desc:"write a CPU profile of the whole run to this file (load runs)"`
	GCPercent     int           `envconfig:"ACTIONS_GC_PERCENT" default:"200" desc:"Go GC target percentage (GOGC) of the service when GOGC is not set: 200 trades ~4 MB of heap for ~10 % less CPU per trigger"`
	LogLevel      string        `envconfig:"ACTIONS_LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
}

// loadSettings reads the settings from getenv, the environment run was
// given: each field from the variable of its envconfig tag, or its default
// tag when the variable is empty. envconfig.Process reads the process
// environment only, so fields are decoded here (the types used are string,
// int, int64, bool, float64, time.Duration and comma-separated []string)
// and runSettings prints the table of settings from the same tags.
func loadSettings(getenv func(string) string) (*settings, error) {
	var s settings
	v := reflect.ValueOf(&s).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		name := f.Tag.Get("envconfig")
		raw := getenv(name)
		if raw == "" {
			raw = f.Tag.Get("default")
		}
		if raw == "" {
			continue
		}
		if err := setField(v.Field(i), raw); err != nil {
			if def := f.Tag.Get("default"); def != "" {
				return nil, fmt.Errorf("settings: %s=%q: %w (the default is %s; consumer settings lists every setting)", name, raw, err, def)
			}
			return nil, fmt.Errorf("settings: %s=%q: %w (leave it empty for the default; consumer settings lists every setting)", name, raw, err)
		}
	}
	if s.ExpectedRate > 0 && getenv("ACTIONS_WORKERS") == "" {
		s.Workers = 0 // sized from the expected load (consumer.Size)
	}
	if s.GCPercent < 50 {
		return nil, fmt.Errorf("settings: ACTIONS_GC_PERCENT is %d; use 50 or more (GOGC, when set, overrides it, off included)", s.GCPercent)
	}
	if s.ConnectTTL < time.Minute || s.ConnectTTL > consumer.MaxConnectTTL {
		return nil, fmt.Errorf("settings: ACTIONS_CONNECT_TTL is %s; use 1m to %s", s.ConnectTTL, consumer.MaxConnectTTL)
	}
	if err := consumer.ValidatePrefix(s.Prefix); err != nil {
		return nil, fmt.Errorf("settings: ACTIONS_PREFIX: %w", err)
	}
	return &s, nil
}

func setField(f reflect.Value, raw string) error {
	switch f.Interface().(type) {
	case string:
		f.SetString(raw)
	case bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("not true or false")
		}
		f.SetBool(b)
	case time.Duration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return errors.New("not a duration such as 30s, 5m or 1h30m (a number needs its unit)")
		}
		f.SetInt(int64(d))
	case int, int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || f.OverflowInt(n) {
			return errors.New("not a whole number in range")
		}
		f.SetInt(n)
	case float64:
		x, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return errors.New("not a number")
		}
		f.SetFloat(x)
	case []string:
		var out []string
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		f.Set(reflect.ValueOf(out))
	default:
		return fmt.Errorf("unsupported setting type %s", f.Type())
	}
	return nil
}

func (s *settings) consumerConfig() consumer.Config {
	prefetch := s.Prefetch
	if prefetch <= 0 {
		prefetch = consumer.NoPrefetch // ACTIONS_PREFETCH=0 means none, not the default
	}
	return consumer.Config{
		Prefix: s.Prefix, Replicas: s.Replicas, Partitions: s.Partitions, ExpectedRate: s.ExpectedRate, ExpectedLatency: s.ExpectedLatency, Workers: s.Workers, ActionConcurrency: s.ActionConcurrency, SlowCall: s.BreakerSlowCall, MaxRetryAfter: s.MaxRetryAfter, Prefetch: prefetch, MaxAckPending: s.MaxAckPending,
		AckWait: s.AckWait, MaxDeliver: s.MaxDeliver, DefaultTimeout: s.DefaultTimeout, MaxTimeout: s.MaxTimeout,
		ResponseBodyCap: s.ResponseBodyCap, ResponseMemory: s.ResponseMemory, ResultRetry: s.ResultRetry, MaxTriggerBytes: s.MaxTriggerBytes, ShutdownTimeout: s.ShutdownTimeout,
		RetentionMaxAge: s.RetentionMaxAge, DuplicateWindow: s.DuplicateWindow,
	}.WithDefaults()
}

// secretSettings are the settings whose values `consumer settings` masks.
// NATS_NKEY and NATS_CREDS are file paths, not secrets, and are shown.
var secretSettings = map[string]bool{
	"NATS_PASSWORD": true, "ACTIONS_ENCRYPTION_KEY": true, "ACTIONS_ENCRYPTION_OLD_KEYS": true, "ACTIONS_ADMIN_PASSWORD": true,
}

// runSettings prints every setting: its variable, its effective value in
// the environment run was given (secrets masked, a password in NATS_URL
// hidden), its default, type and meaning. A value that does not load is
// reported after the table.
func runSettings(args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("settings: unexpected argument %q: settings takes none (it reads the environment)", args[0])
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tVALUE\tDEFAULT\tTYPE\tMEANING")
	t := reflect.TypeOf(settings{})
	for i := range t.NumField() {
		f := t.Field(i)
		name, def := f.Tag.Get("envconfig"), f.Tag.Get("default")
		value := getenv(name)
		switch {
		case value == "" && def != "":
			value = def + " (default)"
		case value == "":
			value = "-"
		case secretSettings[name]:
			value = "**** (set)"
		case name == "NATS_URL":
			value = redactURLs(value)
		}
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, value, def, settingType(f.Type), f.Tag.Get("desc"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := loadSettings(getenv)
	return err
}

// settingType names a setting's type as the README does.
func settingType(t reflect.Type) string {
	switch t {
	case reflect.TypeOf(time.Duration(0)):
		return "duration"
	case reflect.TypeOf([]string(nil)):
		return "comma-separated list"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "integer"
	case reflect.Float64:
		return "number"
	case reflect.Bool:
		return "true or false"
	}
	return "string"
}
