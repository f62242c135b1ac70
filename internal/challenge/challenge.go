// Package challenge parses WWW-Authenticate header fields: the list of
// authentication challenges of RFC 9110 §11.6.1 (formerly RFC 7235 §4.1),
// and in particular the Bearer challenge of RFC 6750 §3, whose error
// parameter tells a client whether its access token was rejected.
//
// A field value is a comma-separated list of challenges, and a challenge's
// auth-params are comma-separated too:
//
//	Basic realm="a", Bearer realm="b", error="invalid_token"
//
// After a scheme, an element of the form `token = value` is a parameter of
// that challenge; a token not followed by "=" starts the next challenge.
// A challenge may instead carry a single token68 (`Negotiate abc123==`).
//
// The parser is lenient, as a client must be with what servers send: it
// never panics, skips empty list elements, reads an unterminated quoted
// string to the end of the value, accepts an unquoted parameter value made
// of anything up to the next comma or whitespace (not only a token), and
// keeps the first of duplicate parameters. At the first element it cannot
// read it stops, and returns the challenges read so far: a challenge whose
// scheme was read is kept with the parameters read before that point.
package challenge

import (
	"net/http"
	"strings"
)

// Challenge is one authentication challenge from a WWW-Authenticate header.
type Challenge struct {
	// Scheme is the auth-scheme as sent; compare it with [Challenge.Is].
	Scheme string
	// Token68 is the token68 form of the challenge, if it used it; then
	// Params is nil.
	Token68 string
	// Params holds the auth-params. Names are lower-cased; quoted-string
	// values are unquoted, with backslash escapes resolved. It is nil when
	// the challenge has no parameters.
	Params map[string]string
}

// Is reports whether the challenge's scheme is scheme, ignoring case.
func (c Challenge) Is(scheme string) bool {
	return strings.EqualFold(c.Scheme, scheme)
}

// Param returns the value of the auth-param name, ignoring the case of the
// name, or "" when the challenge has no such parameter.
func (c Challenge) Param(name string) string {
	return c.Params[strings.ToLower(name)]
}

// Parse parses every challenge in one WWW-Authenticate field value. It is
// lenient: malformed input never panics; Parse returns the challenges it
// could read and drops the malformed rest (see the package doc).
func Parse(value string) []Challenge {
	p := parser{s: value}
	var out []Challenge
	for {
		p.skipSeparators()
		if p.eof() {
			return out
		}
		c, ok := p.challenge()
		if c.Scheme != "" {
			out = append(out, c)
		}
		if !ok {
			return out
		}
	}
}

// ParseHeader parses all WWW-Authenticate field lines of h, in order: a
// response may send several lines, each with several challenges.
func ParseHeader(h http.Header) []Challenge {
	var out []Challenge
	for _, line := range h.Values("WWW-Authenticate") {
		out = append(out, Parse(line)...)
	}
	return out
}

// First returns the first challenge of scheme in h ("Bearer", RFC 6750 §3;
// "DPoP", RFC 9449 §7.1) and whether there was one.
func First(h http.Header, scheme string) (Challenge, bool) {
	for _, c := range ParseHeader(h) {
		if c.Is(scheme) {
			return c, true
		}
	}
	return Challenge{}, false
}

// IsToken reports whether s is an RFC 9110 token, as a method or a scheme
// is.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

// parser reads one field value from left to right.
type parser struct {
	s   string
	pos int
}

// challenge reads one challenge at pos. It reports false when it met
// something it cannot read, which ends the parse; a challenge whose scheme
// was read is returned even then.
func (p *parser) challenge() (Challenge, bool) {
	c := Challenge{Scheme: p.token()}
	if c.Scheme == "" {
		return Challenge{}, false
	}
	if p.eof() || p.peek() == ',' {
		return c, true
	}
	if !isOWS(p.peek()) {
		return Challenge{}, false // e.g. `Bearer="x"`: the scheme never ended
	}
	p.skipOWS()
	if p.eof() || p.peek() == ',' {
		return c, true
	}
	if t, ok := p.token68(); ok {
		c.Token68 = t
		return c, true
	}
	return c, p.params(&c)
}

// token68 reads a token68 at pos if it is all that is left of the
// challenge (it is followed only by OWS and then a comma or the end).
// Otherwise it moves nothing and reports false.
func (p *parser) token68() (string, bool) {
	i := p.pos
	for i < len(p.s) && isToken68Char(p.s[i]) {
		i++
	}
	if i == p.pos {
		return "", false
	}
	for i < len(p.s) && p.s[i] == '=' {
		i++
	}
	end := i
	for i < len(p.s) && isOWS(p.s[i]) {
		i++
	}
	if i < len(p.s) && p.s[i] != ',' {
		return "", false
	}
	t := p.s[p.pos:end]
	p.pos = i
	return t, true
}

// params reads the auth-params of c. It stops before an element that is
// not `token = value`, which starts the next challenge, and reports false
// when the input is malformed.
func (p *parser) params(c *Challenge) bool {
	for first := true; ; first = false {
		start := p.pos
		name := p.token()
		p.skipOWS()
		if name == "" || p.peek() != '=' {
			p.pos = start
			return !first
		}
		p.pos++ // '='
		p.skipOWS()
		value, ok := p.value()
		if !ok {
			return false
		}
		name = strings.ToLower(name)
		if _, dup := c.Params[name]; !dup {
			if c.Params == nil {
				c.Params = make(map[string]string)
			}
			c.Params[name] = value
		}
		p.skipOWS()
		if p.eof() {
			return true
		}
		if p.peek() != ',' {
			return false
		}
		p.skipSeparators()
		if p.eof() {
			return true
		}
	}
}

// value reads a parameter value: a quoted string, or leniently any run of
// visible characters other than a comma or a quote. It reports false when
// there is no value.
func (p *parser) value() (string, bool) {
	if p.peek() == '"' {
		return p.quoted(), true
	}
	start := p.pos
	for !p.eof() && isBareValueChar(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos], p.pos > start
}

// quoted reads a quoted string at pos and returns it unquoted. An
// unterminated string runs to the end of the value, and a trailing lone
// backslash is dropped.
func (p *parser) quoted() string {
	p.pos++ // opening quote
	rest := p.s[p.pos:]
	if i := strings.IndexAny(rest, `"\`); i >= 0 && rest[i] == '"' {
		p.pos += i + 1
		return rest[:i] // no escapes: no copy
	}
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.pos]
		p.pos++
		switch c {
		case '"':
			return b.String()
		case '\\':
			if !p.eof() {
				b.WriteByte(p.s[p.pos])
				p.pos++
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// token reads a possibly empty run of tchar at pos.
func (p *parser) token() string {
	start := p.pos
	for !p.eof() && isTchar(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos]
}

func (p *parser) eof() bool { return p.pos >= len(p.s) }

// peek returns the byte at pos, or 0 at the end.
func (p *parser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.pos]
}

func (p *parser) skipOWS() {
	for !p.eof() && isOWS(p.s[p.pos]) {
		p.pos++
	}
}

// skipSeparators skips OWS and commas, and so empty list elements.
func (p *parser) skipSeparators() {
	for !p.eof() && (isOWS(p.s[p.pos]) || p.s[p.pos] == ',') {
		p.pos++
	}
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// isTchar reports whether c is a tchar of RFC 9110 §5.6.2.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isToken68Char reports whether c may appear in a token68 (RFC 9110
// §11.2) before its trailing "=" padding.
func isToken68Char(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~+/", c) >= 0
}

// isBareValueChar reports whether c may appear in an unquoted parameter
// value, read leniently: any visible byte but a comma or a quote.
func isBareValueChar(c byte) bool {
	return c > ' ' && c != 0x7f && c != ',' && c != '"'
}
