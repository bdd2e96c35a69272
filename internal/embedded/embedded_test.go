package embedded

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStartReportsFailureAtOnce(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		opts     Options
		wantIs   error
		wantText string
	}{
		{"address in use", Options{StoreDir: t.TempDir(), Listen: busy.Addr().String()}, ErrAddrInUse,
			busy.Addr().String() + " is already in use"},
		{"store is a file", Options{StoreDir: notADir, Listen: "127.0.0.1:-1"}, nil, "did not start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			srv, err := Start(tt.opts)
			if err == nil {
				srv.Shutdown()
				t.Fatal("Start succeeded")
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Start took %s to fail; want at once", d)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not match %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not say %q", err, tt.wantText)
			}
		})
	}
}

func TestStartOnFreePort(t *testing.T) {
	srv, err := Start(Options{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if !srv.JetStreamEnabled() {
		t.Error("JetStream is not enabled")
	}
	if !strings.HasPrefix(srv.ClientURL(), "nats://127.0.0.1:") {
		t.Errorf("client URL %s", srv.ClientURL())
	}
}
