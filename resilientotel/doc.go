// Package resilientotel instruments a resilient.Transport with OpenTelemetry,
// following the stable HTTP client semantic conventions: one CLIENT span and
// one http.client.request.duration measurement per request sent to the wire,
// retries and redirects numbered by http.request.resend_count, inside one
// INTERNAL span per call that tells what the Transport did between them.
//
//	tr := resilient.New(nil, resilientotel.Instrument(resilientotel.Config{}))
//
// # Where it sits, and where otelhttp goes
//
// A resilient.Transport sends one request of its caller as several: its
// retries, its hedged copies, and, through an http.Client, the requests that
// follow redirects. The conventions want one CLIENT span per request sent.
// otelhttp wrapped around the Transport sees one span per call, whatever the
// attempts; as the Transport's base, it sees the attempts, but cannot number
// them nor say why they were sent. Instrument reports from inside: the
// Transport calls it right above its base RoundTripper for each attempt
// that reaches the wire (an attempt refused by the breaker or the rate
// limiter never does, and has no CLIENT span; for one its base declines,
// see below), and tells it, for the whole call, what it waited for and
// refused.
//
// Spans, for a call that is retried once:
//
//	resilient GET                         INTERNAL, the call (one RoundTrip)
//	├── GET                               CLIENT, attempt 1 → 503
//	├── (event of the call: resilient.wait, retry_after, 1s)
//	└── GET  http.request.resend_count=1  CLIENT, attempt 2 → 200
//
// # CLIENT spans
//
// Named "{method}", or "{method} {url.template}" when Config.URLTemplate
// gives a template; "HTTP" stands for a method not known (see
// Config.KnownMethods). Attributes: http.request.method (_OTHER for a method
// not known, with http.request.method_original), server.address and
// server.port (the host and port of the URL, where the request is sent,
// as otelhttp has them: an IP address the caller sends to with the Host
// header of a virtual host, not that name; the scheme's default port when
// it has none; the Host header's only for a URL without a host),
// url.full (without its query, see Secrets),
// url.template when known, and
// http.request.resend_count on every resend, retries, hedged copies and
// redirects alike (it counts from the first request of the caller's call,
// so the request that follows a redirect after a retried 302 has 2); then
// http.response.status_code and network.protocol.version (1.0, 1.1, 2 or
// 3: not a later version a server's status line names, nor over TLS a
// version the connection did not negotiate) when a response
// arrives, network.peer.address and network.peer.port (the remote address
// of the connection the request was sent on) when the base reports one
// (net/http's Transport does, through httptrace; an in-memory connection,
// such as net.Pipe's, names no peer), and error.type when the attempt
// failed. The status is Error for a response of 400 or more (error.type
// is then its status code; the conventions ask it of a 4xx on a CLIENT
// span, leaving it Unset only on a SERVER span), for one below 100, a code
// no client can interpret (error.type is its code too, or _OTHER for a
// code of 0, which net/http reads from "000"), and for an attempt without
// a response (error.type is one of the values listed below); its
// description is error.type, never an error's message. A code below 0 or
// of more than three digits, which net/http's HTTP/2 client takes from a
// server's :status, is no status code: as a code of 0, it has no
// http.response.status_code and error.type _OTHER, so that a server
// cannot make a metric series of each answer.
//
// The span ends when the response's headers arrive, or when the attempt
// fails: not when the body is read, so that a body left unread does not
// keep it open. The exception is a success whose body the Transport reads
// within the attempt (resilient.WithBufferedResponse): its span ends once
// the body was read, or, when the body broke on its way, as an attempt
// that failed after its status code was received: with its
// http.response.status_code and network.protocol.version, the error.type
// of the read's error, and an Error status described by it. The span
// processors see it end later, with that end time, once the Transport is
// done with the attempt (a success handed over, an error's body read), or
// when the call ends: a processor that exports spans as they end
// (sdktrace.NewSimpleSpanProcessor) delays the call by its exports, but
// never within an attempt's timeout, where it would cut a success into a
// timeout that is sent again.
//
// # A request the base declines
//
// A base registered as an alternate protocol with
// http.Transport.RegisterProtocol (golang.org/x/net/http2's, without a
// connection to the host) may decline an attempt with the bare
// http.ErrSkipAltProtocol: it sends nothing, and, when the Transport
// returns the sentinel as it is (a first attempt declined, nothing else
// having happened), the http.Transport above sends the caller's request
// itself. As the Transport does, only the bare sentinel says so: wrapped
// (by a middleware, or by a Transport below whose retry its base declined
// after a request was sent), it is an error net/http does not act on, and
// counts as any other (error.type _OTHER).
//
// The attempt's CLIENT span, started before the base had its say (as
// every attempt's must be, for the traceparent it sends), stays: a span
// started cannot be withdrawn (the sampler and the span processors saw it
// start). The conventions make a CLIENT span a request sent; this one is
// none, and says so: it ends with resilient.declined true, an Unset status,
// and neither error.type nor http.response.status_code, and
// http.client.request.duration records nothing for it, so that a host is
// not charged with a failed request it never got. It counts in no
// http.request.resend_count of the requests after it: a retry declined
// ends the call, and a hedged copy declined gives its number to the next
// copy sent, as the Transport's AttemptInfo says, so that copy has the
// same resend count. The request net/http then sends itself is out of the
// Transport's sight: it is the caller's request, without the attempt's
// traceparent (an otelhttp Transport around that http.Transport sees it).
//
// The call's span of a call that returned the bare sentinel is no failure
// either: resilient.declined true, no error.type, an Unset status (its
// resilient.outcome is the Report's, permanent); so is its
// resilient.client.call.duration measurement, with resilient.declined. A
// call that ends otherwise after a declined retry (with the response or
// the error of the attempt before it, as the Transport returns it) has
// that attempt's error.type, not the declined one's. The counts are the
// Report's: a retry declined is an attempt (resilient.attempts) and a
// retry (resilient.client.call.retries), as a retry refused locally is; a
// hedged copy declined is no hedge.
//
// The attempt's own span context is injected into the headers it sends
// (traceparent, with the W3C propagator), in a copy of the request: the
// caller's request is never modified.
//
// One request below the Transport is out of its sight: net/http's
// http.Transport writes a replayable request (a GET, or a write with an
// Idempotency-Key header) a second time, on a new connection, when the
// reused connection it was sent on closed before any answer. That resend
// happens inside the base RoundTripper, within one attempt, with the same
// traceparent; no span can be made for it, but the CLIENT span counts it
// in resilient.transparent_resends (from the writes httptrace reports), and
// so does the metric resilient.client.transparent_resends (gRPC calls such
// resends transparent retries).
//
// # The INTERNAL span
//
// Named "resilient {method}", with the attributes of the CLIENT spans known
// when the call starts, it is the parent of the call's CLIENT spans. Its
// events, at the time they happened:
//
//   - resilient.wait: a wait, with resilient.wait.kind (backoff, retry_after,
//     rate_limit for the client-side rate limiter, or max_in_flight for a
//     slot of the host, see resilient.WithMaxInFlight),
//     resilient.wait.duration in seconds and resilient.attempt.number (the
//     attempt after the backoff, the attempt that waited for the rate
//     limiter or the slot); a wait before a retry has the time it lasted,
//     which is less than the time planned when the caller gave up during
//     it (the attempt after it then never came) or when ResetHost ended a
//     wait for the host's Retry-After;
//   - resilient.circuit_open, resilient.rate_limited,
//     resilient.too_many_in_flight and resilient.retry_budget_exhausted: an
//     attempt refused by the breaker, the rate limiter or the limit of
//     attempts in flight (WithMaxInFlight), a retry refused by the retry
//     budget, with resilient.attempt.number;
//   - resilient.hedge: a hedged copy sent, with resilient.attempt.number and
//     resilient.hedge (1 for the first copy), at the time it started. A
//     copy's base may decline it (see above), never sent: the events are
//     added when the call ends, in the order the copies reached the base,
//     for the copies that ended with anything else and for those still in
//     flight (a base declines at once, before it sends anything, so such a
//     copy was sent as far as anyone knows; a losing copy ends on its own
//     goroutine as the call returns, and the call's span, ended, would take
//     no event later). Events of copies thus come after the other events
//     of the span, with the times they happened.
//
// When the call returns: resilient.attempts (attempts, hedged copies and
// refused attempts included), resilient.hedges, resilient.outcome (the
// Report's Outcome: the call's last attempt's, which is a local refusal
// when the breaker or the rate limiter refused a retry and the call
// returned the response before it), resilient.stop_reason
// when a retryable outcome was not retried, resilient.wait.duration (all the
// call waited, in seconds), and http.response.status_code or error.type, the
// status following the CLIENT spans' rule; resilient.declined, true, for a
// call that returned the bare sentinel of a base that declined it (see
// above). When a panic goes through the
// call (from the base RoundTripper, a Classifier, an observer, the
// Config's Propagator or URLTemplate, a span processor as a CLIENT span
// ends), the span ends all the same before the panic goes on, without
// resilient.outcome, with error.type _OTHER and an Error status; so does
// the CLIENT span of an attempt whose Propagator panicked, which was never
// sent, and the call's other CLIENT spans end too.
//
// Each RoundTrip is a call: the request an http.Client sends after a
// redirect is another call, with an INTERNAL span of its own beside the
// first (both children of the caller's span), and its CLIENT spans go on
// counting resends from the first call's.
//
// # Values of error.type
//
// For an attempt or a call without a response (or a response whose body
// broke as the Transport read it, see above): timeout (the attempt's
// timeout, a deadline, a network timeout), canceled (the caller's context,
// whatever cause it was given, such as another call's error under
// errgroup.WithContext; or the Transport's, for a hedged copy that lost),
// connection_refused, connection_reset, connection_closed (the server closed
// the connection before answering), dns_error, tls_error, circuit_open,
// rate_limited_locally and too_many_in_flight (the local refusals of the
// breaker, the rate limiter and the host's limit of attempts in flight,
// named as their resilient.Outcome; calls only: a refused attempt has no
// CLIENT span), else _OTHER; none for an attempt or a call that the base
// declined with the bare http.ErrSkipAltProtocol (see above), which is no
// failure. With a response of 400 or more, or below
// 100: its status code, such as "503" (_OTHER for a code of 0, below 0
// or of more than three digits).
//
// # Metrics
//
// http.client.request.duration (histogram, s, the convention's bucket
// boundaries) is recorded once per CLIENT span, when it ends (but for an
// attempt the base declined, which sent no request, see above), with
// http.request.method, server.address, server.port,
// http.response.status_code, error.type, network.protocol.version and
// url.template as on the span (server.address is the URL's host: a
// caller that spreads its requests over the IP addresses of a fleet itself,
// under one Host header, gets a series per address, as with otelhttp). The
// others, modelled on gRPC's retry metrics
// (gRFC A96) and Polly's resilience telemetry, have http.request.method,
// server.address and server.port, plus what each says:
//
//   - resilient.client.call.duration (histogram, s): each call, from
//     RoundTrip to its return (or its panic), waits included, with
//     resilient.outcome, http.response.status_code, error.type and
//     resilient.declined as on the INTERNAL span;
//   - resilient.client.call.retries (histogram, {retry}): the retries of a
//     call, that is its attempts after the first, hedged copies excluded and
//     refused attempts included; a call without retries records nothing (as
//     gRPC's grpc.client.call.retries);
//   - resilient.client.call.wait.duration (histogram, s): all a call waited,
//     backoff, Retry-After, rate limiter and slots of its host together
//     (Report.Waited; as gRPC's grpc.client.call.retry_delay); a call that
//     did not wait records nothing;
//   - resilient.client.hedges (counter, {hedge}): hedged copies sent;
//   - resilient.client.rate_limit.wait.duration (histogram, s): each wait of
//     an attempt for the client-side rate limiter;
//   - resilient.client.rate_limit.refusals (counter, {attempt}): attempts
//     the rate limiter refused (a wait past the call's deadline, or longer
//     than the server may ask for);
//   - resilient.client.breaker.refusals (counter, {attempt}): attempts an
//     open or half-open breaker refused;
//   - resilient.client.in_flight.refusals (counter, {attempt}): attempts the
//     limit of attempts in flight to a host (WithMaxInFlight) refused, no
//     slot having come free within the call's wait;
//   - resilient.client.retry_budget.refusals (counter, {retry}): retries the
//     retry budget refused;
//   - resilient.client.breaker.transitions (counter, {transition}): state
//     changes of the breakers, with resilient.breaker.key,
//     resilient.breaker.from and resilient.breaker.to (closed, half-open,
//     open), and no HTTP attribute (the key names the host the server
//     sees: for requests whose Host header names a virtual host behind
//     the URL's address, that virtual host, where their server.address
//     is the address; see resilient.BreakerSettings.Key);
//   - resilient.client.breaker.state (gauge, {state}): the state of each
//     breaker after its last change, 0 closed, 1 half-open, 2 open, with
//     resilient.breaker.key (Transport.BreakerState reads it at any time);
//   - resilient.client.transparent_resends (counter, {request}): requests
//     net/http wrote again on its own within an attempt (see above).
//
// # Cost
//
// With the no-op providers of the trace/noop and metric/noop packages,
// nothing is recorded: the Transport's calls go through unchanged but for
// the propagation of the caller's span context, which a no-op tracer still
// owes (a copy of the request when the propagator injects something). With
// any other provider, spans and measurements are made as described, and
// skipped where the span does not record or the instrument is disabled.
//
// The global providers of a zero Config record nothing until the program
// installs an SDK (otel.SetTracerProvider, otel.SetMeterProvider), which
// may come after Instrument: each call still starts its INTERNAL span
// through the global tracer, which then delegates to the SDK, and which
// eBPF auto-instrumentation hooks. When the tracer made no span (the span
// it returns does not record and has the caller's span context; an SDK's
// span, even not sampled, has an ID of its own) and none of the call's
// instruments is enabled, the call is idle: the rest of it records
// nothing and only propagates the caller's span context, as with the
// no-op providers, and the calls that follow start their span without its
// attributes until one is made. That costs 4 allocations per call whatever
// its attempts, 3 of them the global tracer's span, and about 1 µs on a
// loaded 2-core machine (BenchmarkInstrumentNoopSideBySide). A call that started idle stays
// unrecorded; the first calls after an SDK is installed get their
// INTERNAL span's attributes after it started, out of the sampler's sight.
//
// # Where it departs from the conventions
//
// server.address and server.port are the URL's host and port. The
// conventions of semconv.SchemaURL (since semantic-conventions#2463
// replaced the "URI origin" of earlier versions) name those of the Host
// header, or of HTTP/2's :authority, unless an HTTP/1.1 request
// goes out in absolute form (through a proxy), and an IP address when the
// request is made to one: for a request to https://api.example.com with
// req.Host "other.example", they say other.example. This package keeps the
// URL's, on purpose: it is where the connection goes (network.peer.address
// says the same host), it is what otelhttp records, so that the series of
// a program instrumented by both agree, and it is what the Transport's own
// records name (Attempt.Host, its log records, its errors); the request's
// form, absolute or not, is its base's choice (a Proxy), out of a
// Tracer's sight. The virtual host is the breaker's key (see
// resilient.BreakerSettings.Key), in resilient.breaker.key. url.full drops
// the query, see Secrets.
//
// # Secrets
//
// No attribute, event or status holds a query string, a fragment, user
// information (url.full has REDACTED:REDACTED in its place, as the
// conventions say), a header value or a body: url.full is the URL's scheme,
// host and path. That is stricter than the conventions, whose url.full
// keeps the query and the fragment, with the values of a few query
// parameters replaced by REDACTED (in v1.43.0: X-Amz-Signature,
// X-Amz-Credential, X-Amz-Security-Token, sig and X-Goog-Signature): any
// other parameter may hold a secret (api_key, access_token, a fragment's
// OAuth token), and the Transport's errors and logs leave the query out as
// well. A Host that net/http cannot write, which it sends empty (user
// information put in req.Host by hand), is never server.address, not
// even for a URL without a host. A credential that an API carries in the path by design
// (a Discord webhook's token, a Telegram bot's, a Slack webhook's secret)
// is REDACTED, in the URL's Path as in an Opaque, and so is, in the path
// of a request that follows a redirect, a credential the caller sent on a
// request before it (a server may redirect to "/v1/keys/<key>/usage",
// built from the api_key of the first request's query); any other path
// that holds a secret must be kept out by Config.URLTemplate or by a span
// processor. Breaker keys appear as the Transport names them (see
// resilient.BreakerSettings.Key).
//
// A URL is the server's to choose when it redirects (net/http takes a
// Location header of up to 10 MB): url.full and resilient.breaker.key are
// cut at 8 KiB and server.address at 255 bytes (the longest domain name),
// so that neither the spans nor the metrics, which keep each
// server.address and breaker key they see, carry megabytes. So is
// http.request.method_original at 255 bytes: a method not known may be
// relayed from an inbound request, whose request line net/http's server
// takes up to 1 MB long. So is url.template (and the span name it is in)
// at 8 KiB: Config.URLTemplate may keep bytes of a redirected URL. All
// five are valid UTF-8, bytes that are not replaced by U+FFFD (url.Parse
// keeps a host's, a path's and an opaque URL's bytes past ASCII as they
// are): OTLP drops a whole batch for one value that is not.
package resilientotel
