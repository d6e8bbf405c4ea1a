package resilienttest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestTLSHTTP2 proves that a server WithTLS speaks HTTP/2 over TLS to its
// own Client, on one connection, for loopback and pipe servers alike.
func TestTLSHTTP2(t *testing.T) {
	check := func(t *testing.T, s *Server, wantPrefix string) {
		t.Helper()
		if !strings.HasPrefix(s.URL, wantPrefix) {
			t.Fatalf("URL = %q, want %s…", s.URL, wantPrefix)
		}
		for i := range 5 {
			resp, err := s.Client().Get(s.URL + "/v1/usage")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" || resp.StatusCode != 200 {
				t.Fatalf("request %d: %s, TLS %v, status %d; want HTTP/2.0 over TLS (h2), 200", i, resp.Proto, resp.TLS != nil, resp.StatusCode)
			}
		}
		if st := s.Stats(); st.Connections != 1 || st.Requests != 5 {
			t.Errorf("Connections, Requests = %d, %d; want 1, 5 (one HTTP/2 connection)", st.Connections, st.Requests)
		}
	}
	t.Run("loopback", func(t *testing.T) {
		s := NewServer(Aidelly, WithTLS())
		defer s.Close()
		check(t, s, "https://127.0.0.1:")
		if s.Certificate() == nil || s.Certificate().VerifyHostname("127.0.0.1") != nil {
			t.Errorf("the certificate does not name 127.0.0.1")
		}
	})
	t.Run("pipe", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewPipeServer(Postato, WithTLS())
			defer s.Close()
			check(t, s, "https://postato.test")
			if err := s.Certificate().VerifyHostname("postato.test"); err != nil {
				t.Error(err)
			}
		})
	})
	plain := NewServer(Altyaa)
	defer plain.Close()
	if plain.Certificate() != nil {
		t.Error("Certificate() of a server without TLS is not nil")
	}
}

// TestTLSTrust proves that only a client trusting the certificate gets
// through, and that a client offering HTTP/1.1 only is served in it.
func TestTLSTrust(t *testing.T) {
	s := NewServer(Altyaa, WithTLS())
	defer s.Close()
	stranger := &http.Transport{}
	defer stranger.CloseIdleConnections()
	_, err := (&http.Client{Transport: stranger}).Get(s.URL + "/v1/usage")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("a client without the certificate: %v, want x509.UnknownAuthorityError", err)
	}

	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	h1 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}} // no HTTP/2: a custom TLS config
	defer h1.CloseIdleConnections()
	resp, err := (&http.Client{Transport: h1}).Get(s.URL + "/v1/usage")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.StatusCode != 200 {
		t.Fatalf("%s %d, want HTTP/1.1 200", resp.Proto, resp.StatusCode)
	}
}

// TestTLSFaults proves the faults over HTTP/2: a dropped request resets its
// stream only, slow answers run in fake time, and a handler server speaks
// HTTP/2 too.
func TestTLSFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewPipeServer(Aidelly, WithTLS(), WithScript(RouteCreatePost, DropBefore(), DropAfter(), Slow(time.Minute), Respond(503)))
		defer s.Close()
		for i := range 2 {
			if r := send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k"); r.err == nil {
				t.Fatalf("drop %d: status %d, want an error", i, r.status)
			}
		}
		start := time.Now()
		r := send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k")
		mustStatus(t, r, 201)
		if r.header.Get("Idempotent-Replayed") != "true" || time.Since(start) != time.Minute {
			t.Errorf("after DropAfter and a slow minute: replayed %q after %v", r.header.Get("Idempotent-Replayed"), time.Since(start))
		}
		mustStatus(t, send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k"), 503)
		st := s.Stats()
		if st.Dropped != 2 || st.StoredWrites != 1 || st.Connections != 1 {
			t.Errorf("Dropped, StoredWrites, Connections = %d, %d, %d; want 2, 1, 1 (streams reset, the connection kept)",
				st.Dropped, st.StoredWrites, st.Connections)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		api := &things{}
		s := NewPipeServer(Altyaa, WithTLS(), WithHandler(api), WithScript("POST /v1/things", Respond(502)))
		defer s.Close()
		mustStatus(t, send(t, s, "POST", "/v1/things", `{}`, ""), 502)
		resp, err := s.Client().Post(s.URL+"/v1/things", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 || resp.ProtoMajor != 2 {
			t.Errorf("%s %d, want HTTP/2.0 201", resp.Proto, resp.StatusCode)
		}
	})
}
