package dpop

import (
	"net/http"
	"net/url"
	"sync"
)

// maxNonce bounds the length of a nonce that is kept, and maxOrigins the
// number of origins whose nonce is: a server cannot make a Key grow.
const (
	maxNonce   = 1024
	maxOrigins = 256
)

// nonceCache holds the last nonce each origin gave (RFC 9449 §8, §9).
type nonceCache struct {
	mu sync.RWMutex
	m  map[string]string
}

func (c *nonceCache) get(origin string) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[origin]
}

// observe keeps the nonce of h's DPoP-Nonce field, if it has a valid one,
// as origin's, and returns it ("" if there is none).
func (c *nonceCache) observe(origin string, h http.Header) string {
	v := h.Values("Dpop-Nonce")
	if len(v) != 1 || !validNonce(v[0]) {
		return ""
	}
	n := v[0]
	c.mu.RLock()
	same := c.m[origin] == n
	c.mu.RUnlock()
	if same {
		return n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]string)
	}
	if _, ok := c.m[origin]; !ok && len(c.m) >= maxOrigins {
		for o := range c.m { // forget one origin, any
			delete(c.m, o)
			break
		}
	}
	c.m[origin] = n
	return n
}

// validNonce reports whether n is a nonce of RFC 9449 §8.1: 1*NQCHAR, where
// NQCHAR is %x21 / %x23-5B / %x5D-7E (no space, quote or backslash).
func validNonce(n string) bool {
	if n == "" || len(n) > maxNonce {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// Nonce returns the last nonce that u's origin gave k, or "".
func (k *Key) Nonce(u *url.URL) string { return k.nonces.get(Origin(u)) }

// ObserveNonce keeps the nonce of a response's DPoP-Nonce header field, if
// it has one, as the nonce of u's origin, for the next proofs to that
// origin. Transports made by [Key.Transport] do it for every response.
func (k *Key) ObserveNonce(u *url.URL, h http.Header) { k.nonces.observe(Origin(u), h) }
