package bearer_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
)

// TestProactiveRefresh moves an injected clock through a token's life and
// checks when a request refreshes before it is sent.
func TestProactiveRefresh(t *testing.T) {
	tests := []struct {
		name          string
		lifetime      time.Duration
		leeway        time.Duration
		advance       time.Duration
		wantRefreshes int32
	}{
		{name: "fresh token", lifetime: time.Hour, advance: 10 * time.Minute, wantRefreshes: 0},
		{name: "inside the default leeway", lifetime: time.Hour, advance: time.Hour - 20*time.Second, wantRefreshes: 1},
		{name: "just outside the default leeway", lifetime: time.Hour, advance: time.Hour - 31*time.Second, wantRefreshes: 0},
		{name: "custom leeway", lifetime: time.Hour, leeway: 5 * time.Minute, advance: time.Hour - 4*time.Minute, wantRefreshes: 1},
		{name: "short token: leeway capped at half its life", lifetime: 20 * time.Second, advance: 5 * time.Second, wantRefreshes: 0},
		{name: "short token: past half its life", lifetime: 20 * time.Second, advance: 11 * time.Second, wantRefreshes: 1},
		{name: "leeway disabled, not expired", lifetime: time.Hour, leeway: -1, advance: time.Hour - time.Second, wantRefreshes: 0},
		{name: "leeway disabled, expired", lifetime: time.Hour, leeway: -1, advance: time.Hour + time.Second, wantRefreshes: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			ref := &countingRefresher{ttl: time.Hour, now: clk.Now}
			base := &fakeBase{respond: status(200)}
			tok := &oauth2.Token{AccessToken: "access-0", RefreshToken: "refresh-0", Expiry: clk.Now().Add(tt.lifetime)}
			tr := newTransport(t, bearer.Config{Refresher: ref, Base: base, Leeway: tt.leeway}, tok)
			bearer.SetClock(tr, clk.Now)
			_, err := tr.Token(context.Background()) // read the store now
			require.NoError(t, err)

			clk.Advance(tt.advance)
			for range 3 {
				resp, err := tr.Client().Get("https://api.example.com/")
				require.NoError(t, err)
				resp.Body.Close()
			}
			assert.Equal(t, tt.wantRefreshes, ref.calls.Load())
			want := "Bearer access-0"
			if tt.wantRefreshes > 0 {
				want = "Bearer access-1"
			}
			for _, s := range base.requests() {
				assert.Equal(t, want, s.auth)
			}
		})
	}
}

// TestLoadedTokenCountsLifeFromLoad: a token loaded with 20s left has a 20s
// life for the leeway rule, so it is not refreshed at once.
func TestLoadedTokenCountsLifeFromLoad(t *testing.T) {
	clk := newClock()
	ref := &countingRefresher{ttl: time.Hour, now: clk.Now}
	tok := &oauth2.Token{AccessToken: "access-0", RefreshToken: "refresh-0", Expiry: clk.Now().Add(20 * time.Second)}
	tr := newTransport(t, bearer.Config{Refresher: ref, Base: &fakeBase{respond: status(200)}}, tok)
	bearer.SetClock(tr, clk.Now)

	_, err := tr.Token(context.Background())
	require.NoError(t, err)
	assert.Zero(t, ref.calls.Load())
	clk.Advance(11 * time.Second)
	got, err := tr.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "access-1", got.AccessToken)
}

func TestProactiveTransientFailure(t *testing.T) {
	t.Run("not expired: sent with the current token", func(t *testing.T) {
		clk := newClock()
		ref := &countingRefresher{fail: func(int32) error { return errors.New("token endpoint unreachable") }}
		base := &fakeBase{respond: status(200)}
		tok := &oauth2.Token{AccessToken: "access-0", RefreshToken: "refresh-0", Expiry: clk.Now().Add(time.Hour)}
		var logouts int
		tr := newTransport(t, bearer.Config{Refresher: ref, Base: base, OnLogout: func(context.Context, error) { logouts++ }}, tok)
		bearer.SetClock(tr, clk.Now)
		_, err := tr.Token(context.Background())
		require.NoError(t, err)
		clk.Advance(time.Hour - 10*time.Second)

		resp, err := tr.Client().Get("https://api.example.com/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, "Bearer access-0", base.requests()[0].auth)
		assert.EqualValues(t, 3, ref.calls.Load(), "three attempts")

		// Right after, requests go out without waiting for another attempt.
		resp, err = tr.Client().Get("https://api.example.com/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.EqualValues(t, 3, ref.calls.Load())
		// A little later it tries again.
		clk.Advance(6 * time.Second)
		resp, err = tr.Client().Get("https://api.example.com/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.EqualValues(t, 6, ref.calls.Load())
		assert.Zero(t, logouts)
	})
	t.Run("expired: the refresh error is returned", func(t *testing.T) {
		clk := newClock()
		ref := &countingRefresher{fail: func(int32) error { return errors.New("token endpoint unreachable") }}
		base := &fakeBase{respond: status(200)}
		tok := &oauth2.Token{AccessToken: "access-0", RefreshToken: "refresh-0", Expiry: clk.Now().Add(time.Hour)}
		tr := newTransport(t, bearer.Config{Refresher: ref, Base: base}, tok)
		bearer.SetClock(tr, clk.Now)
		_, err := tr.Token(context.Background())
		require.NoError(t, err)
		clk.Advance(time.Hour + time.Second)

		_, err = tr.Client().Get("https://api.example.com/")
		require.Error(t, err)
		re, ok := isRefreshError(err)
		require.True(t, ok, "got %v", err)
		assert.False(t, re.Permanent)
		assert.Equal(t, 3, re.Attempts)
		assert.Empty(t, base.requests(), "nothing sent with an expired token")
	})
}

func TestNoTokenYet(t *testing.T) {
	t.Run("refresher without a token: ErrNoToken, no logout", func(t *testing.T) {
		var logouts int
		tr := newTransport(t, bearer.Config{
			Refresher: bearer.OAuth2(&oauth2.Config{}),
			Base:      &fakeBase{respond: status(200)},
			OnLogout:  func(context.Context, error) { logouts++ },
		}, nil)
		_, err := tr.Client().Get("https://api.example.com/")
		require.Error(t, err)
		assert.ErrorIs(t, err, bearer.ErrNoToken)
		assert.Zero(t, logouts)
	})
	t.Run("a refresher that can mint one is asked", func(t *testing.T) {
		ref := &countingRefresher{}
		base := &fakeBase{respond: status(200)}
		tr := newTransport(t, bearer.Config{Refresher: ref, Base: base}, nil)
		resp, err := tr.Client().Get("https://api.example.com/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, "Bearer access-1", base.requests()[0].auth)
	})
	t.Run("SetToken then requests", func(t *testing.T) {
		base := &fakeBase{respond: status(200)}
		tr := newTransport(t, bearer.Config{Refresher: &countingRefresher{}, Base: base}, nil)
		require.NoError(t, tr.SetToken(context.Background(), &oauth2.Token{AccessToken: "given"}))
		resp, err := tr.Client().Get("https://api.example.com/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, "Bearer given", base.requests()[0].auth)
	})
}

var _ http.RoundTripper = (*bearer.Transport)(nil)
