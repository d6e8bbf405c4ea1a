// Package envelope reads the JSON error bodies of HTTP APIs: their shape,
// stable code, message, details, request id and retryable flag.
//
// It decodes with encoding/json, so it accepts exactly the JSON documents
// encoding/json accepts (no trailing data, no malformed numbers), past a
// leading UTF-8 byte-order mark, which RFC 8259 lets a parser ignore; matches
// member names as encoding/json does (escapes decoded, case ignored), and
// when a member repeats, keeps its first value of the expected kind. Of
// two retryable flags that disagree, the document's own and its error's,
// false wins.
package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of objects and arrays that Parse accepts:
// deeper documents are not envelopes.
const MaxDepth = 32

// The shapes Parse recognizes, by the members that carry the code. A shape
// says where the code was read, nothing about who sent it.
const (
	// ErrorObject is {"error":{"code":…,"message":…}}, with the code in
	// "code", else in "type" (as OpenAI and Anthropic send it).
	ErrorObject = "error-object"
	// ErrorString is {"error":"CODE","message":…} or, as in OAuth 2.0,
	// {"error":"invalid_token","error_description":…}. An "error" that
	// is a status's reason phrase beside a string "code" (not of digits
	// alone), {"error":"Bad Request","code":"FST_ERR_VALIDATION"}, leaves
	// the code to "code".
	ErrorString = "error-string"
	// Problem is an RFC 9457 problem document: {"type":…,"title":…,
	// "status":…,"detail":…}, the code being the type's last segment, or
	// an extension member "code" (with about:blank, a type that links
	// into an RFC, the status's specification, as ASP.NET Core's do, or
	// one whose last segment repeats the status, a page about it:
	// https://httpstatuses.io/409).
	// Without the problem's Content-Type, a type that is a bare word
	// rather than a URI ({"type":"error","status":…,"code":…}, Box's)
	// leaves the code to a string "code" (not of digits alone).
	Problem = "problem+json"
	// ErrorsArray is {"errors":[{"code":…,"message":…},…]}: the first
	// element is read.
	ErrorsArray = "errors-array"
	// CodeMessage is {"code":…,"message":…} at the top level, with or
	// without "errors", which are then its parts: the code and the
	// retryable flag of their first element are not the document's, nor
	// are its details and request id when the document has its own.
	CodeMessage = "code-message"
	// Message is {"message":…} alone, as GitHub sends it: no code.
	Message = "message"
)

// The vendors Parse recognizes by members of their own.
const (
	// Stripe is an error object whose doc_url or request_log_url is on
	// stripe.com.
	Stripe = "stripe"
	// Google is an error object of Google's APIs (google.rpc.Status in
	// JSON): a numeric code and a canonical status name, such as
	// {"code":429,"status":"RESOURCE_EXHAUSTED"}; the status is its code.
	// Their older JSON errors, a numeric code and "errors" whose items
	// have a "domain" and a "reason" ({"code":403,"errors":[{"domain":
	// "usageLimits","reason":"rateLimitExceeded"}]}), are Google's too:
	// the status is still the code when there is one, else the first
	// item's reason; the reason is kept in Reason either way.
	Google = "google"
	// Postato is an error object whose "origin" is "platform", Postato's
	// platform errors ({"error":{"origin":"platform","code":…,
	// "retryable":…}}). An "origin" of another value (a gateway, a
	// service, an upstream of another API's) makes no platform error.
	Postato = "postato"
)

// Envelope is what Parse found in an error body.
type Envelope struct {
	Shape       string // one of the shapes above; "" when none matched
	Vendor      string // Stripe, Google or Postato when recognized; "" otherwise
	Code        string // the stable code; numbers keep their JSON text
	NumericCode bool   // Code was a JSON number
	ErrorType   string // the error object's "type" member, if any
	Success     bool   // the document has a top-level "success" member
	Message     string
	RequestID   string
	Details     []byte // a copy of the details value, verbatim; nil when none
	Retryable   int8   // -1: not said, 0: false, 1: true
	Reason      string // a Google error's first "errors" item's "reason"; "" when none
}

// Parse reads the error envelope in data. problem tells that the
// Content-Type was application/problem+json. It reports false when data is
// not a JSON object, or is nested deeper than MaxDepth. A UTF-8 byte-order
// mark that starts data is skipped, as RFC 8259 lets a parser do (servers
// whose UTF-8 writers add one, .NET's, send it), where encoding/json
// refuses it.
func Parse(data []byte, problem bool) (Envelope, bool) {
	return ParseStatus(data, problem, 0)
}

// ParseStatus is Parse for the body of a response of the given status (0
// for unknown). A top-level code that is a number, or a string of its
// digits, beside "errors" repeats the status only when it is that status
// ({"code":422,"errors":[…]} on a 422): the first of the errors then
// names the error. Another number is a code of the document's own
// ({"code":300,"message":"Validation Failed.","errors":[…]}, as Zoom
// answers a 400), whose errors are its parts. With an unknown status, any
// number beside "errors" is taken for the status.
func ParseStatus(data []byte, problem bool, status int) (Envelope, bool) {
	env := Envelope{Retryable: -1}
	data = TrimBOM(data)
	if !isObject(data) || !withinDepth(data, MaxDepth) {
		return env, false
	}
	var d document
	if err := json.Unmarshal(data, &d); err != nil {
		// A member of another kind than its field (an "error" string
		// where an object may be, a "meta" that is no object) is no
		// error: encoding/json decodes the rest and reports it. Only
		// these members can cause one, all others accept any value.
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return env, false
		}
		var s struct {
			Error text `json:"error"`
		}
		if json.Unmarshal(data, &s) == nil {
			d.errorString = s.Error
		}
	}
	env.Success = bool(d.Success)

	// The error object, else the first of the errors, carries the code.
	var src *errorObject
	switch {
	case d.Error.present():
		src = &d.Error
	case d.Errors.hasFirst:
		src = &d.Errors.first
	}
	// fromList says that the code is the first of the errors' own: when
	// the document has a code of its own, an item of its list is one of
	// its parts (a field, a platform), whose retryable flag says nothing
	// of the whole.
	fromList := src == &d.Errors.first
	if src != nil {
		env.Code, env.NumericCode = src.Code.s, src.Code.numeric
		env.ErrorType = src.Type.s
		if env.Code == "" && isToken(src.Type.s) {
			env.Code = src.Type.s
		}
		env.Message = first(src.Message.s, src.Detail.s, src.Title.s)
		env.Details = src.Details
		env.Retryable = src.Retryable.value()
		env.RequestID = first(src.RequestID.s, src.RequestIDCamel.s)
	}

	switch {
	case d.Error.present():
		env.Shape = ErrorObject
		e := &d.Error
		reason := e.Errors.reason.s
		if !e.Code.numeric || !e.Errors.domain.set || !isToken(reason) {
			reason = "" // not one of Google's older errors
		}
		switch {
		case isGoogleStatus(e.Status.s) && (e.Code.numeric || !e.Code.set):
			env.Vendor = Google
			env.Code, env.NumericCode = e.Status.s, false
			env.Reason = reason
		case reason != "":
			env.Vendor = Google
			env.Code, env.NumericCode = reason, false
			env.Reason = reason
		case onStripe(e.DocURL.s) || onStripe(e.RequestLogURL.s):
			env.Vendor = Stripe
		case e.Origin.platform:
			env.Vendor = Postato
		}
	case d.errorString.set:
		env.Shape = ErrorString
		env.Code, env.NumericCode = d.errorString.s, false
		if d.Code.s != "" && !d.Code.number() && isReasonPhrase(env.Code) {
			// The status's reason phrase ("Bad Request", as Fastify,
			// NestJS and Hapi send it) beside a code of the
			// document's own: the code names the error.
			env.Code = d.Code.s
		}
		fromList = false
		env.Message = first(d.Message.s, d.ErrorDescription.s, env.Message)
	case problem || (d.Type.s != "" || d.Title.s != "") && bool(d.Status):
		env.Shape = Problem
		// The type names the problem; with about:blank (or none), an
		// extension member "code", else the first of "errors", does.
		c := ProblemCode(d.Type.s)
		if typeCode := (code{s: c}); typeCode.repeats(status) {
			// A page about the status (https://httpstatuses.io/409,
			// Hellang's ProblemDetails' default), not a problem of
			// the API's own: its digits repeat the status, as a
			// "code":"409" does, and name no code.
			c = ""
		}
		if !problem && c == d.Type.s && d.Code.s != "" && !d.Code.number() {
			// Not a URI but a word that names the document's kind
			// ({"type":"error","status":…,"code":…}, as Box sends
			// it), beside a code of the document's own: the code
			// names the error.
			c = ""
		}
		if c != "" {
			env.Code, env.NumericCode = c, false
			fromList = false
		} else if d.Code.s != "" {
			env.Code, env.NumericCode = d.Code.s, d.Code.numeric
			fromList = false
		}
		env.Message = first(d.Detail.s, d.Title.s, env.Message)
	case d.Code.s != "" && !(d.Errors.isArray && d.Code.repeats(status)):
		// A code of its own: the errors, if any, are its parts. (The
		// status beside them, {"code":400,"errors":[…]}, or a string
		// of its digits, {"code":"400",…}, repeats the status: the
		// first of them names the error.)
		env.Shape = CodeMessage
		env.Code, env.NumericCode = d.Code.s, d.Code.numeric
		fromList = false
		env.Message = first(d.Message.s, env.Message)
	case d.Errors.isArray:
		env.Shape = ErrorsArray
	case d.Message.s != "":
		env.Shape = Message
	}
	if env.Shape != "" && env.Message == "" {
		env.Message = d.Message.s
	}
	if env.Details == nil {
		env.Details = d.Details
	}
	if src == &d.Errors.first && !fromList {
		// The first of the errors is a part of the document: its
		// retryable flag is not the document's, and the document's own
		// details and request id win over the part's.
		env.Retryable = -1
		if d.Details != nil {
			env.Details = d.Details
		}
		if id := first(d.RequestID.s, d.RequestIDCamel.s, d.Meta.RequestID.s, d.Meta.RequestIDCamel.s); id != "" {
			env.RequestID = id
		}
	}
	if top := d.Retryable.value(); env.Retryable < 0 || top == 0 {
		// The document's own flag, when its error says none; and its
		// own false whatever its error object or the first of its
		// errors says: of two words, the one that retries nothing.
		env.Retryable = top
	}
	if env.RequestID == "" {
		env.RequestID = first(d.RequestID.s, d.RequestIDCamel.s, d.Meta.RequestID.s, d.Meta.RequestIDCamel.s)
	}
	return env, true
}

// ProblemCode returns the last path segment of an RFC 9457 type URI (or
// its fragment, when it has one), without its query, or "" for
// about:blank, an empty type, or a link into an RFC (see specLink).
func ProblemCode(typ string) string {
	if typ == "" || typ == "about:blank" || specLink(typ) {
		return ""
	}
	if q := strings.IndexByte(typ, '?'); q >= 0 {
		// A query is not part of the path; a '?' in the fragment is
		// the fragment's.
		if f := strings.IndexByte(typ, '#'); f < 0 {
			typ = typ[:q]
		} else if q < f {
			typ = typ[:q] + typ[f:]
		}
	}
	typ = strings.TrimRight(typ, "/")
	if i := strings.LastIndexAny(typ, "/#:"); i >= 0 {
		return typ[i+1:]
	}
	return typ
}

// specLink reports whether typ, a problem's type, links into an RFC on a
// host the RFCs are served from, as ASP.NET Core's problem documents do
// ("https://tools.ietf.org/html/rfc9110#section-15.5.10" for a 409): it
// points at the specification of the status, as about:blank does, and
// names no problem of the API's own; its anchor ("section-15.5.10") is no
// code.
func specLink(typ string) bool {
	rest := typ
	for _, scheme := range [...]string{"https://", "http://"} {
		if len(rest) >= len(scheme) && strings.EqualFold(rest[:len(scheme)], scheme) {
			rest = rest[len(scheme):]
			break
		}
	}
	if len(rest) == len(typ) {
		return false
	}
	host, path, _ := strings.Cut(rest, "/")
	switch strings.ToLower(host) {
	case "tools.ietf.org", "datatracker.ietf.org", "www.ietf.org", "www.rfc-editor.org", "rfc-editor.org",
		"httpwg.org", "www.w3.org":
	default:
		return false
	}
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	path = strings.TrimRight(path, "/")
	doc := path[strings.LastIndexByte(path, '/')+1:]
	if i := strings.IndexAny(doc, ".-"); i >= 0 {
		doc = doc[:i] // rfc9110.html, rfc9110.txt, rfc2616-sec10.html
	}
	if len(doc) <= 3 || !strings.EqualFold(doc[:3], "rfc") {
		return false
	}
	for i := 3; i < len(doc); i++ {
		if doc[i] < '0' || doc[i] > '9' {
			return false
		}
	}
	return true
}

// document is the union of the top-level members of the shapes. Its
// members of scalar kinds have types that decode the kind they expect and
// ignore the others; "error" and "meta" are structs, decoded in the same
// pass, which makes a value of another kind a type error.
type document struct {
	Success          seen        `json:"success"`
	Error            errorObject `json:"error"`
	Errors           errorList   `json:"errors"`
	Code             code        `json:"code"`
	Message          text        `json:"message"`
	ErrorDescription text        `json:"error_description"`
	Details          raw         `json:"details"`
	Detail           text        `json:"detail"`
	Title            text        `json:"title"`
	Type             text        `json:"type"`
	Status           seen        `json:"status"`
	Retryable        flag        `json:"retryable"`
	RequestID        text        `json:"request_id"`
	RequestIDCamel   text        `json:"requestId"`
	Meta             meta        `json:"meta"`

	errorString text // "error" when it is a string
}

// errorObject is the members of an error object: Aidelly's, Altyaa's,
// Postato's platform errors, Stripe's, Google's, OpenAI's, Anthropic's,
// JSON:API's and GitHub's elements of "errors".
type errorObject struct {
	Code           code       `json:"code"`
	Type           text       `json:"type"`
	Status         text       `json:"status"`
	Message        text       `json:"message"`
	Detail         text       `json:"detail"`
	Title          text       `json:"title"`
	Details        raw        `json:"details"`
	Retryable      flag       `json:"retryable"`
	Origin         origin     `json:"origin"`
	RequestID      text       `json:"request_id"`
	RequestIDCamel text       `json:"requestId"`
	DocURL         text       `json:"doc_url"`
	RequestLogURL  text       `json:"request_log_url"`
	Errors         reasonList `json:"errors"` // Google's older errors
}

// present reports whether the error object had any of its members: an
// object without them (or none at all) carries no error.
func (e *errorObject) present() bool {
	return e.Code.set || e.Type.set || e.Status.set || e.Message.set || e.Detail.set ||
		e.Title.set || e.Details != nil || e.Retryable != 0 || e.Origin.seen ||
		e.RequestID.set || e.RequestIDCamel.set || e.DocURL.set || e.RequestLogURL.set
}

// meta is the members of "meta" that Parse reads.
type meta struct {
	RequestID      text `json:"request_id"`
	RequestIDCamel text `json:"requestId"`
}

// text is a string member.
type text struct {
	s   string
	set bool
}

func (t *text) UnmarshalJSON(b []byte) error {
	if t.set || b[0] != '"' {
		return nil
	}
	s, err := unquote(b)
	t.s, t.set = s, err == nil
	return err
}

// unquote decodes a JSON string as encoding/json does, without its
// machinery when there is nothing to decode.
func unquote(b []byte) (string, error) {
	if in := b[1 : len(b)-1]; bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		return string(in), nil
	}
	var s string
	err := json.Unmarshal(b, &s)
	return s, err
}

// code is a code member: a string, or a number kept as its JSON text.
type code struct {
	s       string
	numeric bool
	set     bool
}

func (c *code) UnmarshalJSON(b []byte) error {
	if c.set {
		return nil
	}
	switch x := b[0]; {
	case x == '"':
		s, err := unquote(b)
		if err != nil {
			return err
		}
		c.s, c.set = s, true
	case x == '-' || '0' <= x && x <= '9':
		c.s, c.numeric, c.set = string(b), true, true
	}
	return nil
}

// repeats reports whether the code repeats status: it is a number, or a
// string of digits, that is status, or any such when status is 0
// (unknown).
func (c *code) repeats(status int) bool {
	return c.number() && (status == 0 || c.s == strconv.Itoa(status))
}

// number reports whether the code is a number, or a string of digits
// ("429", as Azure spells its codes).
func (c *code) number() bool {
	if c.numeric {
		return true
	}
	for i := 0; i < len(c.s); i++ {
		if c.s[i] < '0' || c.s[i] > '9' {
			return false
		}
	}
	return c.s != ""
}

// flag is a boolean member: 0 when absent or not a boolean, 1 false, 2 true.
type flag int8

func (f *flag) UnmarshalJSON(b []byte) error {
	if *f == 0 {
		switch string(b) {
		case "true":
			*f = 2
		case "false":
			*f = 1
		}
	}
	return nil
}

// value returns -1 when not said, 0 for false, 1 for true.
func (f flag) value() int8 { return int8(f) - 1 }

// seen records that a member is there, whatever its value.
type seen bool

func (p *seen) UnmarshalJSON([]byte) error {
	*p = true
	return nil
}

// origin records an error object's "origin" member: seen whatever its
// value, platform when it is the string "platform" (in any case), as
// Postato's platform errors send it.
type origin struct {
	seen, platform bool
}

func (o *origin) UnmarshalJSON(b []byte) error {
	o.seen = true
	if b[0] == '"' {
		s, err := unquote(b)
		o.platform = err == nil && strings.EqualFold(s, "platform")
	}
	return nil
}

// raw keeps a copy of a member's value.
type raw []byte

func (r *raw) UnmarshalJSON(b []byte) error {
	if *r == nil {
		*r = append(raw(nil), b...)
	}
	return nil
}

// errorList is "errors": an array whose first element, when an object, is
// read; the others are skipped.
type errorList struct {
	isArray  bool
	hasFirst bool
	first    errorObject
}

func (l *errorList) UnmarshalJSON(b []byte) error {
	if l.isArray || b[0] != '[' {
		return nil
	}
	l.isArray = true
	// A Go array of one decodes the first element and skips the others;
	// a first element that is no object is a type error, and no error.
	var first [1]errorObject
	if err := json.Unmarshal(b, &first); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return err
		}
	}
	l.first, l.hasFirst = first[0], first[0].present()
	return nil
}

// reasonList is the "errors" of a Google error object in its APIs' older
// JSON errors: an array whose first item, when an object, gives its
// "reason" and "domain"; the others are skipped.
type reasonList struct {
	reason, domain text
}

func (l *reasonList) UnmarshalJSON(b []byte) error {
	if l.reason.set || l.domain.set || b[0] != '[' {
		return nil
	}
	var first [1]struct {
		Reason text `json:"reason"`
		Domain text `json:"domain"`
	}
	if err := json.Unmarshal(b, &first); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return err
		}
	}
	l.reason, l.domain = first[0].Reason, first[0].Domain
	return nil
}

// TrimBOM returns data without the UTF-8 byte-order mark (U+FEFF, the
// bytes EF BB BF) it starts with, if any.
func TrimBOM(data []byte) []byte {
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		return data[3:]
	}
	return data
}

// isObject reports whether the first byte of data that is not JSON white
// space opens an object.
func isObject(data []byte) bool {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c == '{'
	}
	return false
}

// withinDepth reports whether objects and arrays nest at most max deep in
// data, counting brackets outside strings. It runs before decoding, so
// that a deep document costs one pass.
func withinDepth(data []byte, max int) bool {
	depth, inString := 0, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			if depth++; depth > max {
				return false
			}
		case '}', ']':
			depth--
		}
	}
	return true
}

// first returns the first non-empty string of ss.
func first(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// isReasonPhrase reports whether s, in any case, is the reason phrase of
// an HTTP status ("Bad Request", "Forbidden"), which names no error of an
// API's own.
func isReasonPhrase(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for status := 100; status < 600; status++ {
		if t := http.StatusText(status); t != "" && strings.EqualFold(t, s) {
			return true
		}
	}
	return false
}

// isToken reports whether s looks like a code: 1 to 64 letters, digits,
// '_', '-' or '.', as error types are (invalid_request_error,
// overloaded_error), unlike sentences or URLs.
func isToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

// googleStatuses are the canonical names of google.rpc.Code, as Google's
// JSON errors spell them in "status".
var googleStatuses = [...]string{
	"CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "UNAUTHENTICATED", "RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
	"UNAVAILABLE", "DATA_LOSS",
}

func isGoogleStatus(s string) bool {
	for _, g := range googleStatuses {
		if s == g {
			return true
		}
	}
	return false
}

// onStripe reports whether u is an https URL on stripe.com or one of its
// subdomains.
func onStripe(u string) bool {
	rest, ok := strings.CutPrefix(u, "https://")
	if !ok {
		return false
	}
	host := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		host = rest[:i]
	}
	return host == "stripe.com" || strings.HasSuffix(host, ".stripe.com")
}
