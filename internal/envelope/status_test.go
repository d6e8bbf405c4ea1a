package envelope

import "testing"

// TestParseStatus: a number beside "errors" repeats the status only when it
// is that status; and the document's own retryable false wins over its
// error's true.
func TestParseStatus(t *testing.T) {
	tests := []struct {
		data      string
		status    int
		code, msg string
		retryable int8
	}{
		{`{"code":422,"message":"M","errors":[{"code":"F","message":"I"}]}`, 422, "F", "I", -1},
		{`{"code":"422","message":"M","errors":[{"code":"F","message":"I"}]}`, 422, "F", "I", -1},
		{`{"code":422,"message":"M","errors":[{"code":"F","message":"I"}]}`, 0, "F", "I", -1},
		{`{"code":300,"message":"M","errors":[{"code":"F","message":"I","retryable":true}]}`, 400, "300", "M", -1},
		{`{"code":"300","message":"M","errors":[{"code":"F","message":"I"}]}`, 400, "300", "M", -1},
		{`{"retryable":false,"errors":[{"code":"F","retryable":true}]}`, 400, "F", "", 0},
		{`{"retryable":true,"errors":[{"code":"F","retryable":false}]}`, 400, "F", "", 0},
		{`{"retryable":true,"errors":[{"code":"F"}]}`, 400, "F", "", 1},
		{`{"error":{"code":"E","retryable":true},"retryable":false}`, 400, "E", "", 0},
	}
	for _, tc := range tests {
		e, ok := ParseStatus([]byte(tc.data), false, tc.status)
		if !ok || e.Code != tc.code || e.Message != tc.msg || e.Retryable != tc.retryable {
			t.Errorf("ParseStatus(%s, %d) = code %q message %q retryable %d, %v; want %q %q %d", tc.data, tc.status, e.Code, e.Message, e.Retryable, ok, tc.code, tc.msg, tc.retryable)
		}
	}
}
