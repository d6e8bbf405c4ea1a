package resilient

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// envelope is what parseEnvelope found in an error body.
type envelope struct {
	dialect   string
	code      string
	message   string
	requestID string
	details   []byte // raw JSON, aliasing the input
	retryable int8   // -1: not said, 0: false, 1: true
}

// maxJSONDepth bounds the nesting parseEnvelope follows; deeper documents
// are not envelopes.
const maxJSONDepth = 32

// parseEnvelope detects the shape of a JSON error body and extracts its
// stable code, message, details, request id and retryable flag. problem
// tells that the Content-Type was application/problem+json. It reports false
// when data is not a JSON object (HTML, text, truncated or too deep).
//
// Shapes, detected without configuration:
//
//	{"success":false,"error":{"code":…,"message":…},"request_id":…}   aidelly
//	{"error":{"code":…,"message":…,"details":{…}}}                     altyaa
//	{"error":"CODE","message":…,"details":{…}}                         postato
//	{"error":{"origin":…,"code":…,"message":…,"retryable":false}}      postato
//	{"type":…,"title":…,"status":…,"detail":…}                         problem+json (RFC 9457)
//	{"type":"about:blank",…,"code":…}                                 problem+json with an extension code
//	{"errors":[{"code":…,"message":…}]}                                generic
//	{"code":…,"message":…}                                             generic
func parseEnvelope(data []byte, problem bool) (envelope, bool) {
	env := envelope{retryable: -1}
	s := scanner{data: data}
	if s.peek() != '{' {
		return env, false
	}
	var (
		hasSuccess, hasStatus     bool
		errObj, errStr, errsArray bool
		topCode, topMsg           string
		typ, title, detail        string
		errDesc                   string
	)
	ok := s.object(func(key []byte) bool {
		switch string(key) {
		case "success":
			hasSuccess = true
			return s.skip(1)
		case "error":
			switch s.peek() {
			case '{':
				errObj = true
				return s.errorObject(&env)
			case '"':
				errStr = true
				v, ok := s.str()
				env.code = v
				return ok
			}
			return s.skip(1)
		case "errors":
			if s.peek() == '[' {
				errsArray = true
				return s.firstOfArray(func() bool {
					if s.peek() == '{' {
						return s.errorObject(&env)
					}
					return s.skip(2)
				})
			}
			return s.skip(1)
		case "code":
			v, ok := s.scalar()
			topCode = v
			return ok
		case "message":
			v, ok := s.strOrSkip()
			topMsg = v
			return ok
		case "error_description":
			v, ok := s.strOrSkip()
			errDesc = v
			return ok
		case "details":
			v, ok := s.raw(1)
			if env.details == nil {
				env.details = v
			}
			return ok
		case "detail":
			v, ok := s.strOrSkip()
			detail = v
			return ok
		case "title":
			v, ok := s.strOrSkip()
			title = v
			return ok
		case "type":
			v, ok := s.strOrSkip()
			typ = v
			return ok
		case "status":
			hasStatus = true
			return s.skip(1)
		case "retryable":
			if env.retryable < 0 {
				env.retryable = s.boolean()
			}
			return s.skip(1)
		case "request_id", "requestId":
			v, ok := s.strOrSkip()
			if env.requestID == "" {
				env.requestID = v
			}
			return ok
		case "meta":
			if s.peek() != '{' {
				return s.skip(1)
			}
			return s.object(func(key []byte) bool {
				switch string(key) {
				case "request_id", "requestId":
					v, ok := s.strOrSkip()
					if env.requestID == "" {
						env.requestID = v
					}
					return ok
				}
				return s.skip(2)
			}, 1)
		}
		return s.skip(1)
	}, 0)
	if !ok {
		return env, false
	}
	switch {
	case errObj:
		switch {
		case hasSuccess:
			env.dialect = "aidelly"
		case env.retryable >= 0 || s.origin:
			env.dialect = "postato"
		default:
			env.dialect = "altyaa"
		}
	case errStr:
		env.dialect = "postato"
		if env.message == "" {
			env.message = topMsg
		}
		if env.message == "" {
			env.message = errDesc
		}
	case problem || (typ != "" || title != "") && hasStatus:
		env.dialect = "problem+json"
		// The type names the problem; with about:blank (or none), an
		// extension member "code", else the first of "errors", does.
		if c := problemCode(typ); c != "" {
			env.code = c
		} else if topCode != "" {
			env.code = topCode
		}
		env.message = detail
		if env.message == "" {
			env.message = title
		}
	case errsArray:
		env.dialect = "generic"
	case topCode != "":
		env.dialect = "generic"
		env.code = topCode
		env.message = topMsg
	}
	if env.message == "" && env.dialect != "" {
		env.message = topMsg
	}
	return env, true
}

// problemCode returns the last path segment of an RFC 9457 type URI, or ""
// for about:blank or an empty type.
func problemCode(typ string) string {
	if typ == "" || typ == "about:blank" {
		return ""
	}
	for len(typ) > 0 && typ[len(typ)-1] == '/' {
		typ = typ[:len(typ)-1]
	}
	if i := strings.LastIndexAny(typ, "/#:"); i >= 0 {
		return typ[i+1:]
	}
	return typ
}

// scanner is a minimal, allocation-conscious JSON reader: it extracts the
// few fields an error envelope has and skips everything else, following at
// most maxJSONDepth levels of nesting.
type scanner struct {
	data   []byte
	i      int
	origin bool // an error object had an "origin" field
}

func (s *scanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.data) {
		return s.data[s.i]
	}
	return 0
}

func (s *scanner) consume(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

// object iterates over the members of the object at the cursor, calling
// member with each key; member must consume the value.
func (s *scanner) object(member func(key []byte) bool, depth int) bool {
	if depth >= maxJSONDepth || !s.consume('{') {
		return false
	}
	if s.consume('}') {
		return true
	}
	for {
		if s.peek() != '"' {
			return false
		}
		key, ok := s.rawString()
		if !ok || !s.consume(':') {
			return false
		}
		s.ws()
		if !member(key) {
			return false
		}
		if s.consume(',') {
			continue
		}
		return s.consume('}')
	}
}

// firstOfArray calls first on the array's first element and skips the rest.
func (s *scanner) firstOfArray(first func() bool) bool {
	if !s.consume('[') {
		return false
	}
	if s.consume(']') {
		return true
	}
	if !first() {
		return false
	}
	for s.consume(',') {
		if !s.skip(2) {
			return false
		}
	}
	return s.consume(']')
}

// errorObject reads an {"code","message","details","retryable","origin"}
// object into env; later fields do not override earlier ones.
func (s *scanner) errorObject(env *envelope) bool {
	return s.object(func(key []byte) bool {
		switch string(key) {
		case "code":
			v, ok := s.scalar()
			if env.code == "" {
				env.code = v
			}
			return ok
		case "message":
			v, ok := s.strOrSkip()
			if env.message == "" {
				env.message = v
			}
			return ok
		case "details":
			v, ok := s.raw(3)
			if env.details == nil {
				env.details = v
			}
			return ok
		case "retryable":
			if env.retryable < 0 {
				env.retryable = s.boolean()
			}
			return s.skip(3)
		case "origin":
			s.origin = true
		case "request_id", "requestId":
			v, ok := s.strOrSkip()
			if env.requestID == "" {
				env.requestID = v
			}
			return ok
		}
		return s.skip(3)
	}, 2)
}

// boolean returns 1 or 0 when the value at the cursor is true or false, and
// -1 otherwise; it does not consume it.
func (s *scanner) boolean() int8 {
	rest := s.data[s.i:]
	switch {
	case bytes.HasPrefix(rest, []byte("true")):
		return 1
	case bytes.HasPrefix(rest, []byte("false")):
		return 0
	}
	return -1
}

// scalar returns a string value, or the text of a number (numeric codes
// become strings); any other value is skipped and yields "".
func (s *scanner) scalar() (string, bool) {
	switch c := s.peek(); {
	case c == '"':
		return s.str()
	case c == '-' || c >= '0' && c <= '9':
		start := s.i
		if !s.skip(1) {
			return "", false
		}
		return string(s.data[start:s.i]), true
	}
	return "", s.skip(1)
}

// strOrSkip returns a string value, or skips a value of another kind.
func (s *scanner) strOrSkip() (string, bool) {
	if s.peek() == '"' {
		return s.str()
	}
	return "", s.skip(1)
}

// raw returns the bytes of the value at the cursor, which it skips.
func (s *scanner) raw(depth int) ([]byte, bool) {
	s.ws()
	start := s.i
	if !s.skip(depth) {
		return nil, false
	}
	return s.data[start:s.i], true
}

// rawString consumes a string and returns its undecoded contents.
func (s *scanner) rawString() ([]byte, bool) {
	if !s.consume('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.data) {
		switch c := s.data[s.i]; {
		case c == '"':
			v := s.data[start:s.i]
			s.i++
			return v, true
		case c == '\\':
			s.i += 2
		case c < 0x20:
			return nil, false
		default:
			s.i++
		}
	}
	return nil, false
}

// str consumes a string and returns it decoded.
func (s *scanner) str() (string, bool) {
	v, ok := s.rawString()
	if !ok {
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v), true
	}
	return unescape(v)
}

// unescape decodes the escapes of a JSON string's contents.
func unescape(v []byte) (string, bool) {
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(v) {
			return "", false
		}
		switch v[i] {
		case '"', '\\', '/':
			out = append(out, v[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(v[i+1:])
			if !ok {
				return "", false
			}
			i += 4
			if utf16.IsSurrogate(r) && i+6 < len(v) && v[i+1] == '\\' && v[i+2] == 'u' {
				if r2, ok := hex4(v[i+3:]); ok {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 6
					}
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	return string(out), true
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[:4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}

// skip consumes one value of any kind, following nesting up to
// maxJSONDepth.
func (s *scanner) skip(depth int) bool {
	if depth >= maxJSONDepth {
		return false
	}
	switch c := s.peek(); {
	case c == '"':
		_, ok := s.rawString()
		return ok
	case c == '{':
		return s.object(func([]byte) bool { return s.skip(depth + 1) }, depth)
	case c == '[':
		s.i++
		if s.consume(']') {
			return true
		}
		for {
			if !s.skip(depth + 1) {
				return false
			}
			if s.consume(',') {
				continue
			}
			return s.consume(']')
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		start := s.i
		for s.i < len(s.data) {
			switch c := s.data[s.i]; {
			case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
				s.i++
				continue
			}
			break
		}
		return s.i > start
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	if bytes.HasPrefix(s.data[s.i:], []byte(lit)) {
		s.i += len(lit)
		return true
	}
	return false
}
