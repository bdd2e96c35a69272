package consumer

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"customactions/auth"
)

// tracerName names the instrumentation scope of the consumer's spans.
const tracerName = "customactions/consumer"

// WithTracerProvider traces triggers with tp (default: none, and nothing
// is traced or propagated). Each trigger gets a span "trigger <action id>",
// a child of the W3C traceparent of its message when it has one, with a
// client span per HTTP attempt; the attempt's traceparent is sent to the
// action. Span attributes carry the method, status code, attempt number
// and host, never the URL's query or path, nor a header value.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(s *Service) {
		if _, off := tp.(noop.TracerProvider); tp == nil || off {
			s.tracer = nil
			return
		}
		s.tracer = tp.Tracer(tracerName)
	}
}

// traceContext reads and writes the W3C traceparent and tracestate headers.
var traceContext propagation.TraceContext

// startTrigger starts the span of trigger p under the trace its message
// carries. Called only when tracing is on.
func (s *Service) startTrigger(ctx context.Context, p *pending) (context.Context, trace.Span) {
	if h := p.msg.Headers(); h != nil {
		ctx = traceContext.Extract(ctx, natsCarrier(h))
	}
	ctx, span := s.tracer.Start(ctx, "trigger "+p.t.ActionID, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("action_id", p.t.ActionID),
			attribute.String("trigger_id", p.r.res.TriggerID),
			attribute.Int64("stream_seq", int64(p.meta.Sequence.Stream)),
		))
	return ctx, span
}

// endTrigger records the trigger's result on its span and ends it.
func endTrigger(span trace.Span, r *run) {
	res := r.res
	span.SetAttributes(attribute.String("status", res.Status), attribute.Int("attempts", res.Attempts))
	switch {
	case r.infra != nil:
		span.SetStatus(codes.Error, "not finished, retried later")
	case res.Error != nil:
		span.SetAttributes(attribute.String("error.code", res.Error.Code))
		span.SetStatus(codes.Error, res.Error.Code)
	}
	span.End()
}

// traceAuth notes on the trigger's span the token work of a call: a token
// fetched by this call, or a wait for a refreshed one.
func traceAuth(ctx context.Context, tokenID string, o auth.CallOutcome) {
	if o.Fetched == nil && !o.Refreshed {
		return
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	name := "token refreshed"
	if o.Fetched != nil {
		name = "token fetched"
	}
	span.AddEvent(name, trace.WithAttributes(attribute.String("token_id", tokenID), attribute.Bool("retried", o.Retried)))
}

// startAttempt starts the client span of one HTTP attempt and sends its
// traceparent with req. Called only when tracing is on.
func (s *Service) startAttempt(ctx context.Context, req *http.Request, attempt int) trace.Span {
	_, span := s.tracer.Start(ctx, "HTTP "+req.Method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("http.request.method", req.Method),
			attribute.String("server.address", req.URL.Hostname()),
			attribute.Int("attempt", attempt),
		))
	traceContext.Inject(trace.ContextWithSpan(ctx, span), propagation.HeaderCarrier(req.Header))
	return span
}

// endAttempt records what an attempt gave on its span and ends it.
func endAttempt(span trace.Span, res *callResult) {
	if res.status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", res.status))
	}
	switch {
	case res.code != "":
		// The code only: the message may quote what the action sent.
		span.SetAttributes(attribute.String("error.type", res.code))
		span.SetStatus(codes.Error, res.code)
	case res.status >= 400:
		span.SetAttributes(attribute.String("error.type", strconv.Itoa(res.status)))
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// natsCarrier reads and writes trace headers of a NATS message, whose
// header names keep their case: traceparent is found however written.
type natsCarrier nats.Header

func (c natsCarrier) Get(key string) string {
	if v, ok := c[key]; ok && len(v) > 0 {
		return v[0]
	}
	for k, v := range c {
		if strings.EqualFold(k, key) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func (c natsCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

func (c natsCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
