package bearer

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// This file decides where the token may go.

type skipAuthKey struct{}

// SkipAuth returns a context under which requests are sent as they are: no
// token is attached and no refresh is made for them. Use it for calls that
// must not carry the user's token, such as a login or a public endpoint.
func SkipAuth(ctx context.Context) context.Context {
	return context.WithValue(ctx, skipAuthKey{}, true)
}

func skipped(ctx context.Context) bool {
	v, _ := ctx.Value(skipAuthKey{}).(bool)
	return v
}

// hostSet holds Config.Hosts: names alone match any port, host:port entries
// match that port only.
type hostSet struct {
	names map[string]bool // lower-case hostnames
	addrs map[string]bool // lower-case host:port
}

// checkHosts refuses the Config.Hosts entries that no request could match,
// each with the reason: a request's host is compared with an entry as it is
// written, so a wildcard, a leading or trailing dot, a name that is not in
// punycode or a port that is not a number would silently keep the token from
// every request.
func checkHosts(hosts []string) error {
	for _, h := range hosts {
		if why := badHost(h); why != "" {
			return fmt.Errorf("bearer: Config.Hosts: %q %s", h, why)
		}
	}
	return nil
}

// badHost says what is wrong with a Hosts entry, or "" if nothing is.
func badHost(entry string) string {
	const notHost = "is not a host or host:port (no scheme, path or user)"
	if entry == "" || strings.ContainsAny(entry, "/?#@ \t") {
		return notHost
	}
	host := entry
	if h, port, err := net.SplitHostPort(entry); err == nil {
		if port == "" {
			return "has an empty port"
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return "has a port that is not a number from 1 to 65535"
		}
		host = h
	} else if len(entry) > 2 && entry[0] == '[' && entry[len(entry)-1] == ']' {
		host = entry[1 : len(entry)-1]
		if !strings.Contains(host, ":") {
			return notHost // brackets hold an IPv6 address
		}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	switch {
	case strings.Contains(host, "*"):
		return "is a wildcard, which Hosts does not support: list each host"
	case !isASCII(host):
		return `is not ASCII: write the name in punycode ("xn--..."), in Hosts and in request URLs`
	case strings.HasPrefix(host, "."):
		return "starts with a dot, which does not mean subdomains here: list each host"
	case strings.HasSuffix(host, "."):
		return "ends with a dot, which request hosts do not: write it without"
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || strings.ContainsFunc(label, func(r rune) bool {
			return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_')
		}) {
			return notHost
		}
	}
	return ""
}

func newHostSet(hosts []string) *hostSet {
	if len(hosts) == 0 {
		return nil
	}
	s := &hostSet{names: map[string]bool{}, addrs: map[string]bool{}}
	for _, h := range hosts {
		h = strings.ToLower(h)
		if _, _, err := net.SplitHostPort(h); err == nil {
			s.addrs[h] = true
		} else {
			s.names[strings.Trim(h, "[]")] = true
		}
	}
	return s
}

func (s *hostSet) allows(req *http.Request) bool {
	if s.names[strings.ToLower(req.URL.Hostname())] {
		return true
	}
	return len(s.addrs) > 0 && s.addrs[strings.ToLower(hostPort(req))]
}

// hostPort is the request's host with its port, the scheme's default if none.
func hostPort(req *http.Request) string {
	u := req.URL
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// mayCarry reports whether req may be sent with the token. A request that
// may not is sent as it is and never refreshed for.
func (t *Transport) mayCarry(req *http.Request) bool {
	if req.URL == nil || hasAuthorization(req.Header) || skipped(req.Context()) {
		return false
	}
	if t.hosts != nil {
		if !t.hosts.allows(req) {
			return false
		}
	} else if req.Response != nil && !mayFollow(req) {
		return false
	}
	return req.URL.Scheme == "https" || (req.URL.Scheme == "http" && (t.cfg.AllowHTTP || isLoopback(req.URL.Hostname())))
}

// hasAuthorization reports whether the caller set an Authorization header:
// h.Get("Authorization") != "", or a key in another spelling
// ("authorization", set on the map directly) with a value, which net/http
// would send beside the token. It allocates nothing: the canonical key is
// looked up, and only keys of the right length are compared.
func hasAuthorization(h http.Header) bool {
	if v := h["Authorization"]; len(v) > 0 && v[0] != "" {
		return true
	}
	for k, v := range h {
		if len(k) == len("Authorization") && len(v) > 0 && k != "Authorization" && strings.EqualFold(k, "Authorization") {
			return true
		}
	}
	return false
}

// maxHops bounds the walk back along a redirect chain (http.Client stops
// after 10 redirects); a longer chain, or a cycle, proves nothing.
const maxHops = 64

// mayFollow reports whether the token may follow a redirect to req. It
// decides from what the chain proves: a chain that cannot be walked back to
// its first request (a base that set no Response.Request, as a cache or a
// middleware that builds its own responses may) proves nothing, and gets no
// token.
//
// The rule is net/http's for an Authorization header that the caller set:
// every hop so far, this one included, went to the first request's host or
// a subdomain of it; once a hop left, the rest of the chain gets no token
// either, even back home.
func mayFollow(req *http.Request) bool {
	first := firstRequest(req)
	if first == nil {
		return false
	}
	orig := first.URL.Hostname()
	for r := req; r != first; r = r.Response.Request {
		if !isDomainOrSubdomain(r.URL.Hostname(), orig) {
			return false
		}
	}
	return true
}

// firstRequest walks a redirect chain back to the request that started it,
// or returns nil when the chain is broken.
func firstRequest(req *http.Request) *http.Request {
	for range maxHops {
		if req.Response == nil {
			return req
		}
		if req = req.Response.Request; req == nil || req.URL == nil {
			return nil
		}
	}
	return nil
}

// isDomainOrSubdomain is net/http's rule (client.go) for whether a redirect
// keeps the sensitive headers a caller set: sub is parent or a subdomain of
// it, names compared as written. Its guard stays: a name with ':' or '%' is
// an IPv6 address, possibly with a zone such as "::1%.api.example.com", and
// never a subdomain (CVE-2023-45289). Two guards are added, each of which
// only refuses: an IP address has no subdomains, and a name that is not
// ASCII matches only itself (net/http converts it with IDNA first).
func isDomainOrSubdomain(sub, parent string) bool {
	switch {
	case sub == parent:
		return true
	case parent == "" || strings.ContainsAny(sub, ":%") || strings.ContainsAny(parent, ":%"):
		return false
	case !isASCII(sub) || !isASCII(parent):
		return false
	case net.ParseIP(parent) != nil:
		return false
	}
	return strings.HasSuffix(sub, parent) && sub[len(sub)-len(parent)-1] == '.'
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// isLoopback reports whether host is "localhost" or a loopback IP address,
// the hosts that net/http's proxy rule (httpproxy.Config.ProxyFunc) treats
// as local. A name under ".localhost" is not one: whether it resolves to
// loopback depends on the resolver (the pure Go one reads /etc/hosts, then
// asks DNS), so plain http to it needs AllowHTTP. Nor is an address with a
// zone.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
