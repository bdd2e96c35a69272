package events

import (
	"runtime"
	"strings"
	"testing"
)

// benchTrigger is the common shape of a trigger (the load generator's).
var benchTrigger = []byte(`{"id":"trg_01JD6Y3K2Q","action_id":"bench-action","source":"inbox","token_id":"bench-text","request":{"method":"POST","url":"http://127.0.0.1:18080/v1/echo","headers":{"Content-Type":"application/json"},"body":"{\"n\":123}"},"context":{"sent_ns":1}}`)

// BenchmarkDecode measures decoding and validating a common trigger (the
// fast path).
func BenchmarkDecode(b *testing.B) {
	s := NewSubjects("")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(s, "actions.trigger.inbox.bench-action", benchTrigger, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeDeep measures refusing a 260 KB trigger nested 130,000
// levels deep in an unknown field (issue 13). Besides the heap it reports
// stack-B/op, the goroutine stack a decode leaves grown (a recursive
// decoder's cost, which the heap figures do not show).
func BenchmarkDecodeDeep(b *testing.B) {
	s := NewSubjects("")
	const n = 130_000
	data := []byte(`{"id":"t","action_id":"a","source":"inbox","x":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}`)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var stack uint64
	for b.Loop() {
		stack += decodeStack(func() {
			if _, err := Decode(s, "actions.trigger.inbox.a", data, Limits{MaxTriggerBytes: 1 << 20}); err == nil {
				b.Error("accepted")
			}
		})
	}
	b.ReportMetric(float64(stack)/float64(b.N), "stack-B/op")
}

// decodeStack runs f on a new goroutine and returns how much more stack is
// in use while that goroutine is still alive than before it started.
func decodeStack(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
		runtime.ReadMemStats(&after)
	}()
	<-done
	if after.StackInuse < before.StackInuse {
		return 0
	}
	return after.StackInuse - before.StackInuse
}
