package resilient

import (
	"errors"
	"log/slog"
	"net/http"
)

// This file holds what follows from a base RoundTripper that declines an
// attempt with http.ErrSkipAltProtocol: an alternate protocol's
// RoundTripper, registered with http.Transport.RegisterProtocol, without a
// connection to the host (golang.org/x/net/http2's does so), which sends
// nothing, for the http.Transport above to send the request itself. That
// Transport compares the sentinel with ==: only the bare sentinel is a
// request declined (see classifyErr).

// declinedUnsent reports whether attempt st is a retry or a hedged copy
// that the base declined (see attemptState.declined): a request that neither
// the base nor the http.Transport above ever sends, for the call then
// returns what the attempt before it got (see call.run), and a copy is
// the Transport's own. The first attempt declined is none: the call
// returns the sentinel bare, and the http.Transport above sends the
// request itself, whose turn of the host's pace it keeps; unless an
// earlier attempt of its write may have been processed (the request
// http.Client follows a 307 or 308 of it with, see attemptState.marked):
// the call then fails (see declinedBare), and no one sends it either.
func declinedUnsent(st *attemptState) bool {
	return st.declined && (st.number > 1 || st.hedge > 0 || st.marked)
}

// declinedMistake reports whether re is the caller's mistake that
// requestFault made of the bare http.ErrSkipAltProtocol of a base that
// declined a request net/http refuses to send (a header it cannot carry,
// say): its cause is that sentinel, or wraps it directly, as a sentinel a
// middleware wrapped first is not. Neither the base nor net/http sent that
// request: it counts against nothing (see classifyErr), a retry's or a
// hedged copy's included, as a request the base declined does.
func declinedMistake(re *RequestError) bool {
	return re.Err == http.ErrSkipAltProtocol || errors.Unwrap(re.Err) == http.ErrSkipAltProtocol
}

// declinedBare reports whether the call ends with err, its last attempt's,
// the bare http.ErrSkipAltProtocol of the base, returned as it is: no
// attempt got anything else (lastErr, the error of the attempt before,
// nil or the same; held, the response retried past, nil), nor may an
// attempt or a hedged copy of a keyed write have been processed. The
// http.Transport above compares the sentinel itself, to send the request
// on its own, as it does under the base alone.
func (c *call) declinedBare(err, lastErr error, held *http.Response) bool {
	return err == http.ErrSkipAltProtocol && held == nil && (lastErr == nil || lastErr == err) && !c.lost && !c.answeredUnproven
}

// declinedLevel is the log level of the record of a call's last attempt
// that the base declined, and its message (see WithLogger): the call
// failed in nothing, for the http.Transport above sends the request
// itself.
const (
	declinedLevel   = slog.LevelDebug
	declinedMessage = "resilient: the base declined the request, for net/http to send it itself"
)

// handBack leaves the caller's body, captured for a replay (no GetBody),
// to the http.Transport above, once the call returns the bare
// http.ErrSkipAltProtocol (see declinedBare): that Transport sends the
// caller's request itself, and reads the body from where the call found
// it, which no attempt sent (a retry rewinds it). Neither the end of
// RoundTrip (see release) nor the Close of an attempt's reader (a
// declined retry's, see classifier.roundTripAttempt) closes it then:
// net/http cannot send a body closed, nor rewind one without GetBody.
func (c *captureBody) handBack() {
	c.mu.Lock()
	c.srcClosed = true // closed by no one here: the Transport above has it
	c.mu.Unlock()
}
