package redisstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/internal/holdslot"
	"github.com/seamlessauth/bearer/internal/storekey"
	"github.com/seamlessauth/bearer/store"
)

// ErrLockLost is wrapped by the error of a Save or Clear made while this
// Store held the lock, when the lock expired and another holder changed the
// stored token meanwhile: the newer token is left in place. It is also
// wrapped by the error of an unlock that found the lock already expired.
var ErrLockLost = errors.New("redisstore: the lock expired before its holder was done")

// Store keeps one identity's token pair in Redis and implements
// [store.Store] and [store.Locker]. Create it with [New]. A Store is safe
// for concurrent use.
type Store struct {
	client  redis.UniversalClient
	key     string // the token key
	lockKey string
	keyKey  string // the DPoP key's (see store.KeyStore)
	opts    options

	slot *holdslot.Slot[hold] // one holder of the lock per Store at a time, and its hold
}

// hold is one tenure of the lock.
type hold struct {
	owner string // the random value in the lock key

	// mu serializes the writes made under this hold, so that fence is
	// always what the last of them left.
	mu    sync.Mutex
	fence fence
}

// fence is what a holder knows was in the token key while it was the last
// to act on it: read when it took the lock, in the same atomic step, then
// each value it wrote. A write after the lock expired goes through only if
// the token key still matches. Loads do not move it: a Load, by anyone,
// does not show that the holder may replace what it read.
type fence struct {
	state string // "value" or "absent"
	value string // the stored JSON when state is "value"
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Locker   = (*Store)(nil)
	_ store.KeyStore = (*Store)(nil)
)

// New returns a Store for the identity's token on client, which may be a
// single client, a failover client or a cluster client. The keys are
// prefix+"{"+identity+"}:token" and prefix+"{"+identity+"}:lock" (see the
// package documentation). New does not contact Redis.
func New(client redis.UniversalClient, identity string, opts ...Option) (*Store, error) {
	if client == nil || isNilPointer(client) {
		return nil, errors.New("redisstore: New: the Redis client is nil")
	}
	if identity == "" {
		return nil, errors.New("redisstore: New: the identity is empty")
	}
	if strings.ContainsAny(identity, "{}") {
		return nil, fmt.Errorf("redisstore: New: the identity %q contains a brace", identity)
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case strings.ContainsAny(o.prefix, "{}"):
		return nil, fmt.Errorf("redisstore: New: the prefix %q contains a brace", o.prefix)
	case o.lockTTL < time.Millisecond:
		return nil, fmt.Errorf("redisstore: New: the lock TTL %v is under a millisecond", o.lockTTL)
	case o.tokenTTL < 0 || (o.tokenTTL > 0 && o.tokenTTL < time.Millisecond):
		return nil, fmt.Errorf("redisstore: New: the token TTL %v is negative or under a millisecond", o.tokenTTL)
	}
	base := o.prefix + "{" + identity + "}:"
	return &Store{
		client:  client,
		key:     base + "token",
		lockKey: base + "lock",
		keyKey:  base + "dpop-key",
		opts:    o,
		slot:    holdslot.New[hold]("redisstore"),
	}, nil
}

// tombstone is the value Clear leaves in the token key: no token, and the
// fact that it was cleared, which a key that Redis lost cannot tell.
const tombstone = `{"cleared":true}`

// Load returns the stored token, or an error wrapping [store.ErrNotFound]
// when there is none, and [store.ErrCleared] as well after [Store.Clear].
func (s *Store) Load(ctx context.Context) (*oauth2.Token, error) {
	b, err := s.client.Get(ctx, s.key).Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: loading the token: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: loading the token: %w", err)
	}
	if b == tombstone {
		return nil, fmt.Errorf("redisstore: loading the token: %w (%w)", store.ErrCleared, store.ErrNotFound)
	}
	return decode([]byte(b))
}

// Save stores tok, with a TTL if one is known (see [WithTokenTTL]). While
// this Store holds the lock, Save fails with an error wrapping [ErrLockLost],
// and writes nothing, if the lock expired and the stored token has changed
// since the lock was taken or this holder last saved or cleared it.
func (s *Store) Save(ctx context.Context, tok *oauth2.Token) error {
	if tok == nil {
		return errors.New("redisstore: Save of a nil token")
	}
	b, err := encode(tok)
	if err != nil {
		return err
	}
	ttl := s.ttlFor(tok)
	if err := s.write(ctx, string(b), ttl); err != nil {
		return fmt.Errorf("redisstore: saving the token: %w", err)
	}
	return nil
}

// Clear removes the stored token, leaving a value that says it was cleared
// (see [store.ErrCleared]), so that the other holders end their sessions
// rather than save theirs back, while a key that Redis lost (a restart
// without persistence) is saved back. The value has the TTL of
// [WithTokenTTL], if set. While this Store holds the lock, Clear refuses,
// like [Store.Save], to remove a token that another holder saved after this
// one's lock expired.
func (s *Store) Clear(ctx context.Context) error {
	if err := s.write(ctx, tombstone, s.opts.tokenTTL); err != nil {
		return fmt.Errorf("redisstore: clearing the token: %w", err)
	}
	return nil
}

// LoadKey returns the DPoP key kept beside the token (see [store.KeyStore]),
// in the key prefix+"{"+identity+"}:dpop-key", or an error wrapping
// [store.ErrNotFound] when there is none. Anyone who may read the token key
// may read it: give both the same protection (ACLs, TLS).
func (s *Store) LoadKey(ctx context.Context) ([]byte, error) {
	b, err := s.client.Get(ctx, s.keyKey).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: loading the DPoP key: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: loading the DPoP key: %w", err)
	}
	return b, nil
}

// SaveKey replaces the DPoP key, with no TTL: the key outlives the tokens
// bound to it, and Clear leaves it.
func (s *Store) SaveKey(ctx context.Context, key []byte) error {
	if err := storekey.Check(key); err != nil {
		return fmt.Errorf("redisstore: SaveKey: %w", err)
	}
	if err := s.client.Set(ctx, s.keyKey, key, 0).Err(); err != nil {
		return fmt.Errorf("redisstore: saving the DPoP key: %w", err)
	}
	return nil
}

// String describes the store by its token key, without any token.
func (s *Store) String() string { return "redisstore.Store(" + s.key + ")" }

// write sets the token key to value ("" deletes it): directly when this
// Store does not hold the lock, fenced by the lock otherwise.
func (s *Store) write(ctx context.Context, value string, ttl time.Duration) error {
	h := s.slot.Current()
	if h == nil {
		if value == "" {
			return s.client.Del(ctx, s.key).Err()
		}
		return s.client.Set(ctx, s.key, value, ttl).Err()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ms := strconv.FormatInt(ttl.Milliseconds(), 10)
	n, err := fencedWrite.Run(ctx, s.client, []string{s.key, s.lockKey}, h.owner, h.fence.state, h.fence.value, value, ms).Int()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrLockLost
	}
	if value == "" {
		h.fence = fence{state: "absent"}
	} else {
		h.fence = fence{state: "value", value: value}
	}
	return nil
}

// ttlFor returns the TTL of the token key for tok; 0 means none.
func (s *Store) ttlFor(tok *oauth2.Token) time.Duration {
	d := refreshLifetime(tok)
	if d == 0 {
		d = s.opts.tokenTTL
	}
	if d == 0 {
		return 0
	}
	if !tok.Expiry.IsZero() {
		d = max(d, time.Until(tok.Expiry))
	}
	return max(d, time.Millisecond)
}

// isNilPointer reports whether c is an interface holding a nil pointer,
// such as a (*redis.Client)(nil).
func isNilPointer(c redis.UniversalClient) bool {
	v := reflect.ValueOf(c)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
