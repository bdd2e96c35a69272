package main

import "sync"

// testEnv is the environment a test gives run: a map instead of the
// process environment, so tests that set variables can run in parallel.
type testEnv struct {
	mu sync.Mutex
	m  map[string]string
}

// newEnv returns an environment of name, value pairs.
func newEnv(kv ...string) *testEnv {
	e := &testEnv{m: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		e.m[kv[i]] = kv[i+1]
	}
	return e
}

// getenv is the lookup that run takes.
func (e *testEnv) getenv(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.m[name]
}

func (e *testEnv) set(name, value string) {
	e.mu.Lock()
	e.m[name] = value
	e.mu.Unlock()
}
