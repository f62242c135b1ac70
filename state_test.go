package bearer_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/store"
)

// gatedRefresher hands out "access-1", "access-2", ... like
// countingRefresher, but each call first says that it started and then waits
// for the test to let it go.
type gatedRefresher struct {
	countingRefresher
	started chan struct{}
	release chan struct{}
}

func newGatedRefresher(ttl time.Duration, now func() time.Time) *gatedRefresher {
	return &gatedRefresher{
		countingRefresher: countingRefresher{ttl: ttl, now: now},
		started:           make(chan struct{}, 16),
		release:           make(chan struct{}),
	}
}

func (r *gatedRefresher) Refresh(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
	r.started <- struct{}{}
	select {
	case <-r.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return r.countingRefresher.Refresh(ctx, cur)
}

// get sends a GET through tr and returns the status, failing the test if it
// does not come back within a few seconds (the behaviour under test is that
// it comes back at once; the bound only keeps a broken build from hanging).
func get(t *testing.T, tr *bearer.Transport) (int, error) {
	t.Helper()
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := tr.Client().Get("https://api.example.com/")
		if err != nil {
			done <- result{err: err}
			return
		}
		resp.Body.Close()
		done <- result{code: resp.StatusCode}
	}()
	select {
	case r := <-done:
		return r.code, r.err
	case <-time.After(5 * time.Second):
		t.Fatal("the request is still waiting")
		return 0, nil
	}
}

// TestStaleTokenIsSentWhileRefreshing: with the token past its refresh point
// but well before expiry, requests go out at once with it while one refresh
// runs in the background; none waits for that refresh.
func TestStaleTokenIsSentWhileRefreshing(t *testing.T) {
	clk := newClock()
	ref := newGatedRefresher(time.Hour, clk.Now)
	base := &fakeBase{respond: status(200)}
	var events []bearer.RefreshEvent
	var mu sync.Mutex
	tok := &oauth2.Token{AccessToken: "access-0", RefreshToken: "refresh-0", Expiry: clk.Now().Add(time.Hour)}
	tr := newTransport(t, bearer.Config{Refresher: ref, Base: base, OnRefresh: func(_ context.Context, ev bearer.RefreshEvent) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}}, tok)
	bearer.SetClock(tr, clk.Now)
	_, err := tr.Token(context.Background())
	require.NoError(t, err)

	clk.Advance(time.Hour - 20*time.Second) // stale: inside the 30s leeway, outside the 5s margin
	for range 10 {
		code, err := get(t, tr)
		require.NoError(t, err)
		assert.Equal(t, 200, code)
	}
	<-ref.started // the one background refresh
	close(ref.release)
	bearer.Settle(tr)

	assert.EqualValues(t, 1, ref.calls.Load(), "one refresh for ten stale requests")
	for _, s := range base.requests() {
		assert.Equal(t, "Bearer access-0", s.auth)
	}
	code, err := get(t, tr)
	require.NoError(t, err)
	assert.Equal(t, 200, code)
	assert.Equal(t, "Bearer access-1", base.last(t).auth)
	require.Len(t, events, 1)
	assert.Equal(t, bearer.ReasonExpiring, events[0].Reason)
	assert.NoError(t, events[0].Err)
}

// TestBackgroundRefreshFailures: a transient failure in the background
// keeps the valid token in use, is reported, and backs off as the server
// asked (Retry-After); a permanent one ends the session once.
func TestBackgroundRefreshFailures(t *testing.T) {
	t.Run("transient: reported, backs off as asked", func(t *testing.T) {
		clk := newClock()
		ref := &countingRefresher{ttl: time.Hour, now: clk.Now, fail: func(n int32) error {
			if n <= 1 {
				return &oauth2.RetrieveError{Response: &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {"120"}}}}
			}
			return nil
		}}
		base := &fakeBase{respond: status(200)}
		var failures int
		tok := &oauth2.Token{AccessToken: "access-0", RefreshToken: "refresh-0", Expiry: clk.Now().Add(time.Hour)}
		tr := newTransport(t, bearer.Config{Refresher: ref, Base: base, Leeway: 10 * time.Minute,
			OnRefresh: func(_ context.Context, ev bearer.RefreshEvent) {
				if ev.Err != nil {
					failures++
				}
			}}, tok)
		bearer.SetClock(tr, clk.Now)
		_, err := tr.Token(context.Background())
		require.NoError(t, err)

		clk.Advance(55 * time.Minute)
		_, err = get(t, tr)
		require.NoError(t, err)
		bearer.Settle(tr)
		assert.EqualValues(t, 1, ref.calls.Load(), "a Retry-After past the cap ends the attempts")
		assert.Equal(t, 1, failures, "reported through OnRefresh")

		clk.Advance(119 * time.Second)
		_, err = get(t, tr)
		require.NoError(t, err)
		bearer.Settle(tr)
		assert.EqualValues(t, 1, ref.calls.Load(), "no early refresh before Retry-After has passed")

		clk.Advance(2 * time.Second)
		_, err = get(t, tr)
		require.NoError(t, err)
		bearer.Settle(tr)
		assert.EqualValues(t, 2, ref.calls.Load())
		for _, s := range base.requests() {
			assert.Equal(t, "Bearer access-0", s.auth, "the valid token stays in use")
		}
	})
	t.Run("permanent: one logout, then ErrLoggedOut", func(t *testing.T) {
		clk := newClock()
		ref := &countingRefresher{fail: func(int32) error { return bearer.Permanent(errors.New("refresh token revoked")) }}
		var logouts int
		tok := &oauth2.Token{AccessToken: "access-0", RefreshToken: "refresh-0", Expiry: clk.Now().Add(time.Hour)}
		tr := newTransport(t, bearer.Config{Refresher: ref, Base: &fakeBase{respond: status(200)},
			OnLogout: func(context.Context, error) { logouts++ }}, tok)
		bearer.SetClock(tr, clk.Now)
		_, err := tr.Token(context.Background())
		require.NoError(t, err)

		clk.Advance(time.Hour - 20*time.Second)
		code, err := get(t, tr)
		require.NoError(t, err, "sent with the valid token while the refresh runs")
		assert.Equal(t, 200, code)
		bearer.Settle(tr)
		_, err = get(t, tr)
		assert.ErrorIs(t, err, bearer.ErrLoggedOut)
		assert.Equal(t, 1, logouts)
	})
}

// TestExpiredOnArrival: a token that the refresher hands over already
// expired by the local clock is used until the server rejects it, with one
// warning, instead of being refreshed before every request.
func TestExpiredOnArrival(t *testing.T) {
	clk := newClock()
	ref := &countingRefresher{ttl: time.Hour, now: func() time.Time { return clk.Now().Add(-61 * time.Minute) }} // expired a minute ago by our clock
	base := &fakeBase{respond: status(200)}
	var logs bytes.Buffer
	tr := newTransport(t, bearer.Config{Refresher: ref, Base: base,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}, nil)
	bearer.SetClock(tr, clk.Now)

	for range 20 {
		code, err := get(t, tr)
		require.NoError(t, err)
		assert.Equal(t, 200, code)
	}
	assert.EqualValues(t, 1, ref.calls.Load(), "one refresh (there was no token), not one per request")
	assert.Equal(t, 1, strings.Count(logs.String(), "had expired"), "one warning:\n%s", logs.String())
}

// TestRefreshOnlyToken: a stored token with a refresh token and no access
// token is refreshed before the first request; no request carries an empty
// credential and Token never returns one.
func TestRefreshOnlyToken(t *testing.T) {
	var presented []string
	ref := bearer.RefresherFunc(func(_ context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
		presented = append(presented, cur.RefreshToken)
		return &oauth2.Token{AccessToken: "access-1", RefreshToken: "refresh-1"}, nil
	})
	t.Run("from the store", func(t *testing.T) {
		presented = nil
		base := &fakeBase{respond: status(200)}
		tr := newTransport(t, bearer.Config{Refresher: ref, Base: base}, &oauth2.Token{RefreshToken: "refresh-0"})
		code, err := get(t, tr)
		require.NoError(t, err)
		assert.Equal(t, 200, code)
		assert.Equal(t, []string{"refresh-0"}, presented)
		require.Len(t, base.requests(), 1)
		assert.Equal(t, "Bearer access-1", base.last(t).auth)
	})
	t.Run("Token", func(t *testing.T) {
		presented = nil
		tr := newTransport(t, bearer.Config{Refresher: ref, Base: &fakeBase{respond: status(200)}}, &oauth2.Token{RefreshToken: "refresh-0"})
		got, err := tr.Token(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "access-1", got.AccessToken)
	})
	t.Run("SetToken", func(t *testing.T) {
		presented = nil
		st := store.NewMemory(nil)
		base := &fakeBase{respond: status(200)}
		tr := newTransport(t, bearer.Config{Refresher: ref, Base: base, Store: st}, nil)
		require.NoError(t, tr.SetToken(context.Background(), &oauth2.Token{RefreshToken: "refresh-0"}))
		_, err := get(t, tr)
		require.NoError(t, err)
		assert.Equal(t, []string{"refresh-0"}, presented)
		assert.Equal(t, "Bearer access-1", base.last(t).auth)
		saved, err := st.Load(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "refresh-1", saved.RefreshToken)
	})
	t.Run("the refresher cannot: ErrNoToken, nothing sent", func(t *testing.T) {
		base := &fakeBase{respond: status(200)}
		tr := newTransport(t, bearer.Config{Refresher: bearer.RefresherFunc(func(context.Context, *oauth2.Token) (*oauth2.Token, error) {
			return nil, errors.New("token endpoint down")
		}), Base: base}, &oauth2.Token{RefreshToken: "refresh-0"})
		_, err := get(t, tr)
		require.Error(t, err)
		_, err = tr.Token(context.Background())
		require.Error(t, err)
		assert.Empty(t, base.requests(), "no request with an empty credential")
	})
}

// TestLoginStateChangesDuringRefresh: a Logout or SetToken that happens
// while a refresh is under way wins, in memory and in the store. A Logout
// takes effect at once and the refresh's token is dropped; a SetToken waits
// for the store lock, which the refresh holds, and then overwrites its
// token.
func TestLoginStateChangesDuringRefresh(t *testing.T) {
	tests := []struct {
		name      string
		change    func(t *testing.T, tr *bearer.Transport)
		wantErr   error
		wantStore string // access token left in the store; "" for none
		wantUsed  bool   // whether the refresh's token may have been sent
	}{
		{name: "Logout", wantErr: bearer.ErrLoggedOut, change: func(t *testing.T, tr *bearer.Transport) {
			require.NoError(t, tr.Logout(context.Background()))
		}},
		{name: "SetToken", wantStore: "fresh-login", wantUsed: true, change: func(t *testing.T, tr *bearer.Transport) {
			require.NoError(t, tr.SetToken(context.Background(), &oauth2.Token{AccessToken: "fresh-login", RefreshToken: "r"}))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entered := make(chan struct{})
			release := make(chan struct{})
			ref := bearer.RefresherFunc(func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
				close(entered)
				<-release
				return &oauth2.Token{AccessToken: "from-refresh", RefreshToken: "r2"}, nil
			})
			base := &fakeBase{respond: func(r *http.Request) (*http.Response, error) {
				if r.Header.Get("Authorization") == "Bearer access-0" {
					return answer(401), nil
				}
				return answer(200), nil
			}}
			st := store.NewMemory(tok1)
			locking := make(chan struct{}, 2)
			tr := newTransport(t, bearer.Config{Refresher: ref, Base: base, Store: &signalLocker{Memory: st, locking: locking}}, nil)

			done := make(chan error, 1)
			go func() {
				resp, err := tr.Client().Get("https://api.example.com/")
				if err == nil {
					resp.Body.Close()
				}
				done <- err
			}()
			<-entered
			<-locking // the refresh's
			changed := make(chan struct{})
			go func() {
				defer close(changed)
				tt.change(t, tr)
			}()
			<-locking // the change's: it waits for the refresh to unlock
			close(release)
			err := <-done
			<-changed

			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			} else {
				assert.NoError(t, err)
			}
			stored, lerr := st.Load(context.Background())
			if tt.wantStore == "" {
				assert.ErrorIs(t, lerr, store.ErrNotFound, "the refresh must not save over a logout")
			} else {
				require.NoError(t, lerr)
				assert.Equal(t, tt.wantStore, stored.AccessToken, "the refresh must not save over a login")
			}
			for _, s := range base.requests() {
				if !tt.wantUsed {
					assert.NotEqual(t, "Bearer from-refresh", s.auth)
				}
			}
			if tt.wantStore != "" {
				got, err := tr.Token(context.Background())
				require.NoError(t, err)
				assert.Equal(t, tt.wantStore, got.AccessToken)
			}
		})
	}
}

// signalLocker is a Memory whose Lock says on locking that it was called.
type signalLocker struct {
	*store.Memory
	locking chan<- struct{}
}

func (s *signalLocker) Lock(ctx context.Context) (func() error, error) {
	s.locking <- struct{}{}
	return s.Memory.Lock(ctx)
}
