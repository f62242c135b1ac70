package redisstore_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/internal/storetest"
	"github.com/seamlessauth/bearer/store"
	"github.com/seamlessauth/bearer/store/redisstore"
)

const shortLock = 50 * time.Millisecond

// waitLockExpired waits until the lock key is gone: the TTL runs on the
// Redis server's clock, so there is no clock to advance instead.
func waitLockExpired(t *testing.T, rdb *redis.Client, key string) {
	t.Helper()
	require.Eventually(t, func() bool {
		return rdb.Exists(context.Background(), key).Val() == 0
	}, 5*time.Second, 5*time.Millisecond, "the lock did not expire")
}

// takeOver has another holder lock, load, save tok and unlock, as a second
// process would after the first one's lock expired.
func takeOver(t *testing.T, s *redisstore.Store, tok *oauth2.Token) {
	t.Helper()
	unlock, err := s.Lock(t.Context())
	require.NoError(t, err)
	_, _ = s.Load(t.Context())
	require.NoError(t, s.Save(t.Context(), tok))
	require.NoError(t, unlock())
}

// loadElsewhere loads through s on another goroutine, as another user of a
// shared Store would while its holder is busy.
func loadElsewhere(t *testing.T, s *redisstore.Store) {
	t.Helper()
	loaded := make(chan error, 1)
	go func() {
		_, err := s.Load(context.Background())
		loaded <- err
	}()
	require.NoError(t, <-loaded)
}

// tok is storetest.Tok, the token pair named for whom it belongs to.
var tok = storetest.Tok

// TestFencedWrites: while a Store holds the lock, its Save and Clear write
// only if it still holds the lock or the stored token is the one it read.
func TestFencedWrites(t *testing.T) {
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	tests := []struct {
		name    string
		initial *oauth2.Token // nil: the store starts empty
		load    bool          // whether the late holder loads under its lock
		expire  bool          // whether its lock expires before it writes
		meddle  func(t *testing.T, late, other *redisstore.Store)
		write   func(ctx context.Context, late *redisstore.Store) error
		wantErr bool
		want    *oauth2.Token // in the store afterwards; nil: empty
	}{
		{
			name: "lock lost, another holder saved: save refused", initial: tok("1"), load: true, expire: true,
			meddle:  func(t *testing.T, _, o *redisstore.Store) { takeOver(t, o, tok("2")) },
			write:   func(ctx context.Context, s *redisstore.Store) error { return s.Save(ctx, tok("late")) },
			wantErr: true, want: tok("2"),
		},
		{
			name: "lock lost, another holder saved: clear refused", initial: tok("1"), load: true, expire: true,
			meddle:  func(t *testing.T, _, o *redisstore.Store) { takeOver(t, o, tok("2")) },
			write:   func(ctx context.Context, s *redisstore.Store) error { return s.Clear(ctx) },
			wantErr: true, want: tok("2"),
		},
		{
			name: "lock lost, store was empty, another holder saved: save refused", load: true, expire: true,
			meddle:  func(t *testing.T, _, o *redisstore.Store) { takeOver(t, o, tok("2")) },
			write:   func(ctx context.Context, s *redisstore.Store) error { return s.Save(ctx, tok("late")) },
			wantErr: true, want: tok("2"),
		},
		{
			// The late Store may be shared: a Load by another of its users
			// reads the newer token, and must not make it look unchanged.
			name: "lock lost, another holder saved, another goroutine loaded it: save refused", initial: tok("1"), load: true, expire: true,
			meddle: func(t *testing.T, late, o *redisstore.Store) {
				takeOver(t, o, tok("2"))
				loadElsewhere(t, late)
			},
			write:   func(ctx context.Context, s *redisstore.Store) error { return s.Save(ctx, tok("late")) },
			wantErr: true, want: tok("2"),
		},
		{
			name: "lock lost, another holder saved, another goroutine loaded it: clear refused", initial: tok("1"), load: true, expire: true,
			meddle: func(t *testing.T, late, o *redisstore.Store) {
				takeOver(t, o, tok("2"))
				loadElsewhere(t, late)
			},
			write:   func(ctx context.Context, s *redisstore.Store) error { return s.Clear(ctx) },
			wantErr: true, want: tok("2"),
		},
		{
			// Lock read the token as it took the lock: no Load is needed.
			name: "lock lost, nothing loaded, token unchanged: save goes through", initial: tok("1"), expire: true,
			write: func(ctx context.Context, s *redisstore.Store) error { return s.Save(ctx, tok("late")) },
			want:  tok("late"),
		},
		{
			name: "lock lost, nothing loaded, another holder saved: save refused", initial: tok("1"), expire: true,
			meddle:  func(t *testing.T, _, o *redisstore.Store) { takeOver(t, o, tok("2")) },
			write:   func(ctx context.Context, s *redisstore.Store) error { return s.Save(ctx, tok("late")) },
			wantErr: true, want: tok("2"),
		},
		{
			name: "lock lost, token unchanged: save goes through", initial: tok("1"), load: true, expire: true,
			write: func(ctx context.Context, s *redisstore.Store) error { return s.Save(ctx, tok("late")) },
			want:  tok("late"),
		},
		{
			name: "lock lost, token unchanged: clear goes through", initial: tok("1"), load: true, expire: true,
			write: func(ctx context.Context, s *redisstore.Store) error { return s.Clear(ctx) },
		},
		{
			// The holder's own writes move its fence.
			name: "lock lost, the holder saved since, token unchanged: save goes through", initial: tok("1"), expire: true,
			meddle: func(t *testing.T, late, _ *redisstore.Store) { require.NoError(t, late.Save(t.Context(), tok("mine"))) },
			write:  func(ctx context.Context, s *redisstore.Store) error { return s.Save(ctx, tok("late")) },
			want:   tok("late"),
		},
		{
			name: "lock held: save goes through whatever the store holds", initial: tok("1"), load: true,
			meddle: func(t *testing.T, _, o *redisstore.Store) { require.NoError(t, o.Save(t.Context(), tok("unlocked"))) },
			write:  func(ctx context.Context, s *redisstore.Store) error { return s.Save(ctx, tok("holder")) },
			want:   tok("holder"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			late := newStore(t, rdb, prefix, tt.name, redisstore.WithLockTTL(shortLock))
			other := newStore(t, rdb, prefix, tt.name)
			if tt.initial != nil {
				require.NoError(t, other.Save(t.Context(), tt.initial))
			}
			unlock, err := late.Lock(t.Context())
			require.NoError(t, err)
			if tt.load {
				_, _ = late.Load(t.Context())
			}
			if tt.expire {
				waitLockExpired(t, rdb, lockKey(prefix, tt.name))
			}
			if tt.meddle != nil {
				tt.meddle(t, late, other)
			}

			err = tt.write(t.Context(), late)
			if tt.wantErr {
				require.ErrorIs(t, err, redisstore.ErrLockLost)
				assert.Regexp(t, `^redisstore: (saving|clearing) the token: `, err.Error())
			} else {
				require.NoError(t, err)
			}
			got, err := other.Load(t.Context())
			if tt.want == nil {
				assert.ErrorIs(t, err, store.ErrNotFound)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.want.AccessToken, got.AccessToken)
			}
			if tt.expire {
				assert.ErrorIs(t, unlock(), redisstore.ErrLockLost)
			} else {
				assert.NoError(t, unlock())
			}
		})
	}
}

// TestLateHolderKeepsItsToken goes through a Transport: its refresh outlives
// the lock, another process refreshes and saves meanwhile, and the late
// Transport's save is refused. It logs that, and uses the token it got.
func TestLateHolderKeepsItsToken(t *testing.T) {
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	srv := bearertest.NewServer(bearertest.Options{}) // no rotation: both refreshes are valid
	defer srv.Close()
	first := srv.Issue()
	require.NoError(t, newStore(t, rdb, prefix, "svc").Save(t.Context(), first))
	srv.RevokeAccessTokens()

	started, release := make(chan struct{}), make(chan struct{})
	oauth := bearer.OAuth2(srv.Config())
	var logs lockedBuffer
	tr := storetest.NewTransport(t, srv, newStore(t, rdb, prefix, "svc", redisstore.WithLockTTL(shortLock)), bearer.Config{
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Refresher: bearer.RefresherFunc(func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
			close(started)
			<-release // a slow token endpoint
			return oauth.Refresh(ctx, cur)
		}),
	})
	status := make(chan int, 1)
	go func() {
		s, _ := storetest.Get(context.Background(), tr, srv.APIURL)
		status <- s
	}()
	<-started
	waitLockExpired(t, rdb, lockKey(prefix, "svc"))
	newer := srv.Issue()
	takeOver(t, newStore(t, rdb, prefix, "svc"), newer)
	close(release)

	require.Equal(t, http.StatusOK, <-status, "the late holder's request")
	stored, err := newStore(t, rdb, prefix, "svc").Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, newer.AccessToken, stored.AccessToken, "the newer token was overwritten")
	own, err := tr.Token(t.Context())
	require.NoError(t, err)
	assert.NotEqual(t, newer.AccessToken, own.AccessToken, "the late holder keeps the token it got")
	assert.NotEqual(t, first.AccessToken, own.AccessToken)

	out := logs.String()
	assert.Contains(t, out, "saving the new token failed")
	assert.Contains(t, out, redisstore.ErrLockLost.Error())
	for _, secret := range []string{first.AccessToken, first.RefreshToken, newer.AccessToken, newer.RefreshToken, own.AccessToken} {
		assert.NotContains(t, out, secret, "a token in the log")
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
