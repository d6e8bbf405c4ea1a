package resilient

import "errors"

// This file holds the error of a write's call that ends on an attempt that
// reads as never sent after an earlier attempt may have been processed.

// lostWriteError is the cause of the *Error of a call of a keyed write that
// ends without a response on an error that reads as never sent (a layer of
// the chain refused the retry: its breaker open, its rate limiter, its
// limit of attempts in flight; a refused dial) after an earlier attempt,
// or a hedged copy of one, got no answer once it may have been sent (see
// call.lost), or was answered with a failure that does not prove it
// unprocessed, a 5xx (see call.answeredUnproven): the server may have
// processed the write. Whoever takes that
// error for a request never sent resends the write, and a server that
// ignores keys stores it twice: a Transport above, given this one as its
// base (New(New(base))), or an SDK retrying on top. classifyErr,
// provablyUnsent, refusedUnresent and refusedLocally see it for what it
// is. It unwraps to its cause: errors.Is(err, ErrCircuitOpen) and
// errors.As still reach every error below it.
type lostWriteError struct{ err error }

func (e *lostWriteError) Error() string {
	return "resilient: an earlier attempt of the write may have been processed: " + e.err.Error()
}

func (e *lostWriteError) Unwrap() error { return e.err }

// Timeout reports whether the cause is, or wraps, a timeout.
func (e *lostWriteError) Timeout() bool { return isTimeout(e.err) }

// lostWrite returns err, the error that ends a call of which an earlier
// attempt of its write may have been processed, wrapped in a lostWriteError
// when it reads as never sent (see classifyErr), else err itself.
func lostWrite(err error) error {
	if _, neverSent := classifyErr(err); neverSent {
		return &lostWriteError{err: err}
	}
	return err
}

// lostBelow reports whether err is, or wraps, a lostWriteError: the error
// of a call below that may have had the write processed.
func lostBelow(err error) bool {
	var lost *lostWriteError
	return errors.As(err, &lost)
}
