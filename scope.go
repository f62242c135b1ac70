package bearer

import (
	"context"
	"net"
	"net/http"
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

// hasAuthorization is h.Get("Authorization") != "", without canonicalising a
// key that is canonical already.
func hasAuthorization(h http.Header) bool {
	v := h["Authorization"]
	return len(v) > 0 && v[0] != ""
}

// maxHops bounds the walk back along a redirect chain (http.Client stops
// after 10 redirects); a longer chain, or a cycle, proves nothing.
const maxHops = 64

// mayFollow reports whether the token may follow a redirect to req. It
// decides from what the chain proves: a chain that cannot be walked back to
// its first request (a base that set no Response.Request, as a cache or a
// middleware that builds its own responses may) proves nothing, and gets no
// token.
func mayFollow(req *http.Request) bool {
	first := firstRequest(req)
	return first != nil && sameSite(req.URL.Hostname(), first.URL.Hostname())
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

// sameSite applies net/http's rule for sensitive headers on redirects: the
// destination is the original host or one of its subdomains.
func sameSite(dst, orig string) bool {
	dst, orig = strings.ToLower(dst), strings.ToLower(orig)
	return dst == orig || strings.HasSuffix(dst, "."+orig)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
