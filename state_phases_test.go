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
// checks what a request does there: a fresh token is sent; a stale one is
// sent at once while one refresh runs in the background; one within the
// must-wait margin (or expired) waits for the refresh.
func TestProactiveRefresh(t *testing.T) {
	tests := []struct {
		name     string
		lifetime time.Duration
		leeway   time.Duration
		wait     bool // Config.WaitForRefresh
		advance  time.Duration
		want     phaseWant
	}{
		{name: "fresh token", lifetime: time.Hour, advance: 10 * time.Minute, want: sentFresh},
		{name: "inside the default leeway", lifetime: time.Hour, advance: time.Hour - 20*time.Second, want: sentStale},
		{name: "just outside the default leeway", lifetime: time.Hour, advance: time.Hour - 31*time.Second, want: sentFresh},
		{name: "inside the must-wait margin", lifetime: time.Hour, advance: time.Hour - 4*time.Second, want: waited},
		{name: "inside the leeway, waiting opted into", lifetime: time.Hour, wait: true, advance: time.Hour - 20*time.Second, want: waited},
		{name: "custom leeway", lifetime: time.Hour, leeway: 5 * time.Minute, advance: time.Hour - 4*time.Minute, want: sentStale},
		{name: "short token: leeway capped at half its life", lifetime: 20 * time.Second, advance: 5 * time.Second, want: sentFresh},
		{name: "short token: past half its life", lifetime: 20 * time.Second, advance: 11 * time.Second, want: sentStale},
		{name: "short token: inside its margin, a tenth of its life", lifetime: 20 * time.Second, advance: 18*time.Second + time.Millisecond, want: waited},
		{name: "leeway disabled, not expired", lifetime: time.Hour, leeway: -1, advance: time.Hour - time.Second, want: sentFresh},
		{name: "leeway disabled, expired", lifetime: time.Hour, leeway: -1, advance: time.Hour + time.Second, want: waited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			ref := &countingRefresher{ttl: time.Hour, now: clk.Now}
			base := &fakeBase{respond: status(200)}
			tok := &oauth2.Token{AccessToken: "access-0", RefreshToken: "refresh-0", Expiry: clk.Now().Add(tt.lifetime)}
			tr := newTransport(t, bearer.Config{Refresher: ref, Base: base, Leeway: tt.leeway, WaitForRefresh: tt.wait}, tok)
			bearer.SetClock(tr, clk.Now)
			_, err := tr.Token(context.Background()) // read the store now
			require.NoError(t, err)

			clk.Advance(tt.advance)
			resp, err := tr.Client().Get("https://api.example.com/")
			require.NoError(t, err)
			resp.Body.Close()
			bearer.Settle(tr)
			resp, err = tr.Client().Get("https://api.example.com/")
			require.NoError(t, err)
			resp.Body.Close()

			var sent []string
			for _, s := range base.requests() {
				sent = append(sent, s.auth)
			}
			switch tt.want {
			case sentFresh:
				assert.Zero(t, ref.calls.Load())
				assert.Equal(t, []string{"Bearer access-0", "Bearer access-0"}, sent)
			case sentStale:
				assert.EqualValues(t, 1, ref.calls.Load())
				assert.Equal(t, []string{"Bearer access-0", "Bearer access-1"}, sent, "sent at once, refreshed in the background")
			case waited:
				assert.EqualValues(t, 1, ref.calls.Load())
				assert.Equal(t, []string{"Bearer access-1", "Bearer access-1"}, sent, "sent after the refresh")
			}
		})
	}
}

// phaseWant is what a request does with a token at some point of its life.
type phaseWant int

const (
	sentFresh phaseWant = iota // sent, no refresh
	sentStale                  // sent at once, one refresh in the background
	waited                     // sent after the refresh
)

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
	assert.Equal(t, "access-0", got.AccessToken, "stale: still valid, refreshed in the background")
	bearer.Settle(tr)
	got, err = tr.Token(context.Background())
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
		assert.Equal(t, "Bearer access-0", base.last(t).auth)
		bearer.Settle(tr)
		assert.EqualValues(t, 3, ref.calls.Load(), "three attempts, in the background")

		// Right after, requests go out without waiting for another attempt.
		resp, err = tr.Client().Get("https://api.example.com/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.EqualValues(t, 3, ref.calls.Load())
		// A little later, within the must-wait margin, it tries again, and
		// still sends the valid token when that fails.
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

		re, _ := refreshFailure(t, tr)
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
		assert.Equal(t, "Bearer access-1", base.last(t).auth)
	})
	t.Run("SetToken then requests", func(t *testing.T) {
		base := &fakeBase{respond: status(200)}
		tr := newTransport(t, bearer.Config{Refresher: &countingRefresher{}, Base: base}, nil)
		require.NoError(t, tr.SetToken(context.Background(), &oauth2.Token{AccessToken: "given"}))
		resp, err := tr.Client().Get("https://api.example.com/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, "Bearer given", base.last(t).auth)
	})
}

var _ http.RoundTripper = (*bearer.Transport)(nil)
