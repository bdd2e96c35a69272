package netguard

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
)

// TestTLSSessionsAreResumed: an HTTP/1.1 API over TLS that closes every
// connection after one answer gets a full handshake once, then resumed
// ones: the transport keeps the sessions.
func TestTLSSessionsAreResumed(t *testing.T) {
	var conns atomic.Int64
	api := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "ok")
	}))
	api.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	api.StartTLS()
	t.Cleanup(api.Close)

	tr := trustingTransport(t, api)
	if tr.TLSClientConfig.ClientSessionCache == nil {
		t.Fatal("the transport keeps no TLS sessions")
	}
	client := &http.Client{Transport: tr}
	var resumed []bool
	for range 4 {
		resp, err := client.Get(api.URL)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		resumed = append(resumed, resp.TLS.DidResume)
	}
	if want := []bool{false, true, true, true}; !slices.Equal(resumed, want) {
		t.Errorf("resumed %v, want %v", resumed, want)
	}
	if n := conns.Load(); n != 4 {
		t.Errorf("%d connections for 4 calls that each close theirs, want 4", n)
	}
}

// trustingTransport is the policy's transport (private addresses allowed),
// with its own TLS settings, trusting api's certificate as well.
func trustingTransport(t *testing.T, api *httptest.Server) *http.Transport {
	t.Helper()
	tr := Policy{AllowPrivate: true}.Transport(8)
	if tr.TLSClientConfig == nil {
		t.Fatal("the transport has no TLS settings")
	}
	tr.TLSClientConfig.RootCAs = api.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}
