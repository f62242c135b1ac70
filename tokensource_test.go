package bearer_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
)

func clientCredentials(srv *bearertest.Server, secret string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID:     bearertest.DefaultClientID,
		ClientSecret: secret,
		TokenURL:     srv.TokenURL,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
}

// TestFromTokenSourceOneFetchFor500Requests revokes the client credentials
// token under 500 concurrent requests. The token endpoint holds its answer
// until all 500 have been rejected, so every one of them needs the new
// token; one fetch must serve them all.
func TestFromTokenSourceOneFetchFor500Requests(t *testing.T) {
	const n = 500
	srv := bearertest.NewServer(bearertest.Options{})
	defer srv.Close()
	cc := clientCredentials(srv, bearertest.DefaultClientSecret)
	loopback := loopbackBase(t, 64)
	loopback.MaxConnsPerHost = 64
	allRejected, reached := unauthorizedAfter(n)
	base := &fakeBase{next: loopback, observe: allRejected}
	tr := newTransport(t, bearer.Config{
		Refresher: bearer.FromTokenSource(func(ctx context.Context) oauth2.TokenSource { return cc.TokenSource(ctx) }),
		Base:      base,
	}, nil)

	ctx, cancel := context.WithTimeout(context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client()), 30*time.Second)
	defer cancel()
	get := func() (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.APIURL, nil)
		if err != nil {
			return 0, err
		}
		resp, err := tr.Client().Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	// No token yet: the first request fetches one.
	code, err := get()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	first := srv.Stats()
	require.EqualValues(t, 1, first.TokenRequests)

	srv.RevokeAccessTokens()
	srv.OnToken(func(*http.Request) {
		select {
		case <-reached:
		case <-time.After(10 * time.Second): // the assertions below report it
		}
	})

	var wg sync.WaitGroup
	var okCount atomic.Int32
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			code, err := get()
			switch {
			case err != nil:
				errs <- err
			case code == http.StatusOK:
				okCount.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}

	st := srv.Stats()
	assert.EqualValues(t, n, okCount.Load(), "every request succeeds")
	rejected := 0
	for _, s := range base.requests() {
		if s.resp != nil && s.resp.StatusCode == http.StatusUnauthorized {
			rejected++
		}
	}
	assert.Equal(t, n, rejected, "every request was rejected once")
	assert.EqualValues(t, 1, st.TokenRequests-first.TokenRequests, "one token fetch")
	assert.EqualValues(t, 1, st.Issued-first.Issued)
}

// sourceFunc is an oauth2.TokenSource made of a function.
type sourceFunc func() (*oauth2.Token, error)

func (f sourceFunc) Token() (*oauth2.Token, error) { return f() }

func TestFromTokenSourceFetchesEveryTime(t *testing.T) {
	var calls atomic.Int32
	ref := bearer.FromTokenSource(func(context.Context) oauth2.TokenSource {
		return sourceFunc(func() (*oauth2.Token, error) {
			return &oauth2.Token{AccessToken: "cc-" + strconv.Itoa(int(calls.Add(1)))}, nil
		})
	})
	a, err := ref.Refresh(t.Context(), nil)
	require.NoError(t, err)
	b, err := ref.Refresh(t.Context(), a)
	require.NoError(t, err)
	assert.Equal(t, "cc-1", a.AccessToken)
	assert.Equal(t, "cc-2", b.AccessToken)
}

// TestFromTokenSourceCachedSource hands FromTokenSource one long-lived
// caching source: the rejected token comes back, and that is a transient
// error that says what is wrong, not a silent retry with the same token.
func TestFromTokenSourceCachedSource(t *testing.T) {
	var fetches atomic.Int32
	cached := oauth2.ReuseTokenSource(nil, sourceFunc(func() (*oauth2.Token, error) {
		fetches.Add(1)
		return &oauth2.Token{AccessToken: "cached", Expiry: time.Now().Add(time.Hour)}, nil
	}))
	ref := bearer.FromTokenSource(func(context.Context) oauth2.TokenSource { return cached })
	tr := newTransport(t, bearer.Config{Refresher: ref, Base: &fakeBase{respond: status(401)}}, nil)

	re, err := refreshFailure(t, tr)
	assert.False(t, re.Permanent)
	assert.Contains(t, err.Error(), "a new token on each call")
	assert.EqualValues(t, 1, fetches.Load())
}

func TestFromTokenSourceRejectedClient(t *testing.T) {
	srv := bearertest.NewServer(bearertest.Options{})
	defer srv.Close()
	cc := clientCredentials(srv, "wrong-secret")
	tr := newTransport(t, bearer.Config{
		Refresher: bearer.FromTokenSource(func(ctx context.Context) oauth2.TokenSource { return cc.TokenSource(ctx) }),
		Base:      srv.Client().Transport,
	}, nil)
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client())
	_, err := tr.Token(ctx)
	re, ok := isRefreshError(err)
	require.True(t, ok, "want a *RefreshError, got %v", err)
	assert.True(t, re.Permanent, "invalid_client ends it")
	assert.Equal(t, "invalid_client", re.Code)
	assert.Equal(t, 1, re.Attempts)
	assert.NotContains(t, err.Error(), "wrong-secret")
}

func TestFromTokenSourceMisuse(t *testing.T) {
	assert.Panics(t, func() { bearer.FromTokenSource(nil) })
	_, err := bearer.FromTokenSource(func(context.Context) oauth2.TokenSource { return nil }).Refresh(t.Context(), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nil oauth2.TokenSource")
}
