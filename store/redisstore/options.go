package redisstore

import (
	"time"

	"github.com/seamlessauth/bearer"
)

// DefaultPrefix starts the name of every key a [Store] uses.
const DefaultPrefix = "bearer:"

// DefaultLockTTL is how long the refresh lock lives when its holder does not
// release it: bearer's default refresh timeout plus a margin for the round
// trips to Redis and for clock drift between the holder and Redis.
const DefaultLockTTL = bearer.DefaultRefreshTimeout + 10*time.Second

// An Option changes a default of [New].
type Option func(*options)

type options struct {
	prefix   string
	lockTTL  time.Duration
	tokenTTL time.Duration
}

func defaultOptions() options {
	return options{prefix: DefaultPrefix, lockTTL: DefaultLockTTL}
}

// WithPrefix replaces [DefaultPrefix] as the start of the key names, to
// keep several applications apart on one Redis. It may not contain a brace.
func WithPrefix(prefix string) Option {
	return func(o *options) { o.prefix = prefix }
}

// WithLockTTL sets how long the refresh lock lives if its holder never
// releases it (because it died). It must be longer than the
// RefreshTimeout of every bearer.Transport that uses the store, or a slow
// refresh may lose its lock; the default is [DefaultLockTTL]. Waiters for a
// dead holder's lock wait up to this long.
func WithLockTTL(d time.Duration) Option {
	return func(o *options) { o.lockTTL = d }
}

// WithTokenTTL sets the life of the stored token key after each save: the
// refresh token's lifetime, when the token server gives refresh tokens a
// fixed one (with rotation, each refresh starts a new one). A refresh
// lifetime that the token response announces ("refresh_token_expires_in" or
// "refresh_expires_in") takes precedence, and the key never expires before
// the access token does. Zero, the default, keeps the key until it is
// replaced or cleared, unless the response announced a lifetime.
func WithTokenTTL(d time.Duration) Option {
	return func(o *options) { o.tokenTTL = d }
}
