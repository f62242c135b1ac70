package bearer_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
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

// TestTimeoutsStayTimeouts: a request whose deadline passes while it waits
// for a refresh fails with an error that net.Error and os.IsTimeout see as
// a timeout, through http.Client's *url.Error, every time; so does a
// refresh that ran out of time.
func TestTimeoutsStayTimeouts(t *testing.T) {
	stuck := stuckRefresher(t)
	isTimeout := func(t *testing.T, err error) {
		t.Helper()
		require.Error(t, err)
		var ne net.Error
		if assert.True(t, errors.As(err, &ne), "a net.Error: %v", err) {
			assert.True(t, ne.Timeout(), "Timeout(): %v", err)
		}
		assert.True(t, os.IsTimeout(err), "os.IsTimeout: %v", err)
	}

	t.Run("http.Client.Timeout, 20 at once", func(t *testing.T) {
		tr := newTransport(t, bearer.Config{Refresher: stuck, Base: &fakeBase{respond: status(200)}, RefreshTimeout: time.Minute}, nil)
		client := &http.Client{Transport: tr, Timeout: 20 * time.Millisecond}
		errs := make([]error, 20)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				resp, err := client.Get("https://api.example.com/")
				if err == nil {
					resp.Body.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for _, err := range errs {
			isTimeout(t, err)
		}
		tr.CloseIdleConnections()
	})
	t.Run("context deadline", func(t *testing.T) {
		tr := newTransport(t, bearer.Config{Refresher: stuck, Base: &fakeBase{respond: status(200)}, RefreshTimeout: time.Minute}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", "https://api.example.com/", nil)
		require.NoError(t, err)
		_, err = tr.Client().Do(req)
		isTimeout(t, err)
	})
	t.Run("the refresh ran out of time", func(t *testing.T) {
		tr := newTransport(t, bearer.Config{Refresher: stuck, Base: &fakeBase{respond: status(200)}, RefreshTimeout: 10 * time.Millisecond}, nil)
		re, err := refreshFailure(t, tr)
		isTimeout(t, err)
		assert.False(t, re.Temporary(), "already retried: not for a retry layer to retry")
	})
	t.Run("not a timeout", func(t *testing.T) {
		tr := newTransport(t, bearer.Config{Refresher: &countingRefresher{fail: func(int32) error { return errors.New("connection refused") }},
			Base: &fakeBase{respond: status(200)}}, nil)
		_, err := tr.Client().Get("https://api.example.com/")
		require.Error(t, err)
		assert.False(t, os.IsTimeout(err), "%v", err)
	})
}

// stuckRefresher answers when the refresh's time runs out or the test ends;
// the test's cleanup waits for the calls under way, so that no refresh
// outlives the test.
func stuckRefresher(t *testing.T) bearer.Refresher {
	stop := make(chan struct{})
	calls := make(chan chan struct{}, 1000) // each call's done
	t.Cleanup(func() {
		close(stop)
		for {
			select {
			case done := <-calls:
				<-done
			default:
				return
			}
		}
	})
	return bearer.RefresherFunc(func(ctx context.Context, _ *oauth2.Token) (*oauth2.Token, error) {
		done := make(chan struct{})
		calls <- done
		defer close(done)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-stop:
			return nil, errors.New("test over")
		}
	})
}

// failingLock is a Memory whose Lock fails.
type failingLock struct{ *store.Memory }

func (failingLock) Lock(context.Context) (func() error, error) {
	return nil, errors.New("store: lock server unreachable")
}

// TestErrorsSayBearerOnce: a request's error names the package once, at the
// top, with short fragments inside, whatever the path.
func TestErrorsSayBearerOnce(t *testing.T) {
	nilSource := bearer.FromTokenSource(func(context.Context) oauth2.TokenSource { return nil })
	tests := []struct {
		name string
		cfg  bearer.Config
		tok  *oauth2.Token
	}{
		{name: "a refresher's error", cfg: bearer.Config{Refresher: nilSource}},
		{name: "Endpoint's error", cfg: bearer.Config{Refresher: &bearer.Endpoint{URL: "https://auth.example.com/refresh"}}, tok: tok1},
		{name: "the store lock", cfg: bearer.Config{Refresher: &countingRefresher{}, Store: failingLock{store.NewMemory(nil)}}},
		{name: "logged out", cfg: bearer.Config{Refresher: &countingRefresher{fail: func(int32) error {
			return bearer.Permanent(errors.New("revoked"))
		}}}, tok: tok1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Base = &fakeBase{respond: status(401)}
			tr := newTransport(t, tt.cfg, tt.tok)
			_, err := tr.RoundTrip(mustGet(t))
			require.Error(t, err)
			assert.Equal(t, 1, strings.Count(err.Error(), "bearer:"), "%q", err.Error())
			assert.True(t, strings.HasPrefix(err.Error(), "bearer: "), "%q", err.Error())
		})
	}
}

func mustGet(t *testing.T) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://api.example.com/", nil)
	require.NoError(t, err)
	return req
}
