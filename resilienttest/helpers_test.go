package resilienttest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// result is what a test client saw of one request.
type result struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// send makes one request to s with s.Client() and reads the whole answer.
// key, when not empty, is sent as Idempotency-Key.
func send(t *testing.T, s *Server, method, path, body, key string) result {
	t.Helper()
	return sendWith(t, s.Client(), s.URL, method, path, body, key)
}

func sendWith(t *testing.T, c *http.Client, base, method, path, body, key string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// mustStatus fails the test unless r is a response with status.
func mustStatus(t *testing.T, r result, status int) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("got error %v, want status %d", r.err, status)
	}
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
}

// envelope is the union of the three dialects' error envelopes.
type envelope struct {
	code, message, requestID string
	details                  json.RawMessage
}

// parseError reads the error envelope of r in dialect d, checking its
// exact shape, and returns its fields. The request id is the body's for
// Aidelly, the X-Request-Id header's for the others.
func parseError(t *testing.T, d Dialect, r result) envelope {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &top); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	var e envelope
	str := func(raw json.RawMessage) string {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("%s is not a string in %s", raw, r.body)
		}
		return s
	}
	switch d {
	case Aidelly:
		wantKeys(t, top, "success", "error", "request_id")
		if string(top["success"]) != "false" {
			t.Fatalf("success = %s, want false", top["success"])
		}
		var inner map[string]json.RawMessage
		json.Unmarshal(top["error"], &inner)
		wantKeys(t, inner, "code", "message")
		e.code, e.message, e.requestID = str(inner["code"]), str(inner["message"]), str(top["request_id"])
		if h := r.header.Get("X-Request-Id"); h != "" {
			t.Fatalf("Aidelly sent X-Request-Id %q", h)
		}
	case Altyaa:
		wantKeys(t, top, "error")
		var inner map[string]json.RawMessage
		json.Unmarshal(top["error"], &inner)
		if _, ok := inner["details"]; ok {
			wantKeys(t, inner, "code", "message", "details")
		} else {
			wantKeys(t, inner, "code", "message")
		}
		e.code, e.message, e.details = str(inner["code"]), str(inner["message"]), inner["details"]
		e.requestID = r.header.Get("X-Request-Id")
	case Postato:
		if _, ok := top["details"]; ok {
			wantKeys(t, top, "error", "message", "details")
		} else {
			wantKeys(t, top, "error", "message")
		}
		e.code, e.message, e.details = str(top["error"]), str(top["message"]), top["details"]
		e.requestID = r.header.Get("X-Request-Id")
	}
	if len(e.requestID) != 36 {
		t.Fatalf("request id %q is not a UUID", e.requestID)
	}
	if e.message == "" {
		t.Fatalf("empty message in %s", r.body)
	}
	return e
}

// parseSuccess reads a success body of dialect d and returns its data.
func parseSuccess(t *testing.T, d Dialect, r result) json.RawMessage {
	t.Helper()
	switch d {
	case Aidelly:
		var top map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &top); err != nil {
			t.Fatalf("body %s: %v", r.body, err)
		}
		wantKeys(t, top, "success", "data", "request_id")
		if string(top["success"]) != "true" {
			t.Fatalf("success = %s, want true", top["success"])
		}
		return top["data"]
	case Altyaa:
		var top map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &top); err != nil {
			t.Fatalf("body %s: %v", r.body, err)
		}
		wantKeys(t, top, "data")
		if len(r.header.Get("X-Request-Id")) != 36 {
			t.Fatalf("X-Request-Id = %q, want a UUID", r.header.Get("X-Request-Id"))
		}
		return top["data"]
	}
	if !json.Valid(r.body) {
		t.Fatalf("invalid JSON %s", r.body)
	}
	if len(r.header.Get("X-Request-Id")) != 36 {
		t.Fatalf("X-Request-Id = %q, want a UUID", r.header.Get("X-Request-Id"))
	}
	return r.body
}

func wantKeys(t *testing.T, m map[string]json.RawMessage, keys ...string) {
	t.Helper()
	if len(m) != len(keys) {
		t.Fatalf("keys %v, want exactly %v", mapKeys(m), keys)
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Fatalf("keys %v, want exactly %v", mapKeys(m), keys)
		}
	}
}

func mapKeys(m map[string]json.RawMessage) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

var dialects = []Dialect{Aidelly, Altyaa, Postato}
