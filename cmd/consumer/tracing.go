package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// tracerProvider returns the provider that the standard OTEL_* variables
// of getenv ask for, exporting over OTLP/HTTP, and the shutdown that
// flushes it. Tracing is on when OTEL_TRACES_EXPORTER is otlp, or it is
// unset and OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set; otherwise (and with
// OTEL_SDK_DISABLED=true) the provider is nil and nothing is traced.
// The SDK reads its other variables (OTEL_TRACES_SAMPLER, OTEL_BSP_*,
// TLS files) from the process environment.
func tracerProvider(ctx context.Context, getenv func(string) string) (trace.TracerProvider, func(context.Context) error, error) {
	off := func(context.Context) error { return nil }
	on, err := tracingWanted(getenv)
	if err != nil || !on {
		return nil, off, err
	}
	opts, err := otlpOptions(getenv)
	if err != nil {
		return nil, off, err
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, off, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	name := getenv("OTEL_SERVICE_NAME")
	if name == "" {
		name = "customactions-consumer"
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))))
	return tp, tp.Shutdown, nil
}

func tracingWanted(getenv func(string) string) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	switch e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e {
	case "otlp":
		return true, nil
	case "", "none":
		return e == "" && (getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""), nil
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: only otlp or none is supported", e)
	}
}

// otlpOptions reads the endpoint, protocol and headers of the exporter
// from getenv; what is not set there the exporter takes from its defaults.
func otlpOptions(getenv func(string) string) ([]otlptracehttp.Option, error) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := getenv(k); p != "" {
			if p != "http/protobuf" {
				return nil, fmt.Errorf("%s=%q: only http/protobuf is supported", k, p)
			}
			break
		}
	}
	var opts []otlptracehttp.Option
	key, raw, path := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), ""
	if raw == "" {
		key, raw = "OTEL_EXPORTER_OTLP_ENDPOINT", getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
		path = "/v1/traces" // the signal's path is appended to the base URL
	}
	if raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s: want an http or https URL", key)
		}
		if path != "" {
			path = strings.TrimSuffix(u.Path, "/") + path
		} else if path = u.Path; path == "" {
			path = "/" // a traces endpoint is used as it is
		}
		opts = append(opts, otlptracehttp.WithEndpoint(u.Host), otlptracehttp.WithURLPath(path))
		if u.Scheme == "http" {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
	}
	headers := map[string]string{}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		for _, kv := range strings.Split(getenv(k), ",") {
			name, value, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			v, err := url.QueryUnescape(strings.TrimSpace(value))
			if err != nil {
				return nil, fmt.Errorf("%s: a value is not URL-encoded", k) // the value may be a key: not quoted
			}
			headers[strings.TrimSpace(name)] = v
		}
	}
	if len(headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(headers))
	}
	return opts, nil
}
