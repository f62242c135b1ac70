package bearer_test

import (
	"bytes"
	"context"
	"fmt"
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
	"github.com/seamlessauth/bearer/internal/authtest"
)

// recorder remembers every token that passes through a refresher, so the
// test can look for them in everything the library printed.
type recorder struct {
	mu     sync.Mutex
	tokens []string
	next   bearer.Refresher
}

func (r *recorder) add(tok *oauth2.Token) {
	if tok == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokens = append(r.tokens, tok.AccessToken, tok.RefreshToken)
}

func (r *recorder) Refresh(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
	r.add(cur)
	tok, err := r.next.Refresh(ctx, cur)
	r.add(tok)
	return tok, err
}

// TestNoTokenInOutput drives a Transport through refreshes, transient
// failures and a logout with a debug-level text logger, and checks that no
// token appears in a log line, an error or the %v of the library's values.
func TestNoTokenInOutput(t *testing.T) {
	srv, cfg := newServer(t, authtest.Options{Rotate: true, ReuseDetection: true})
	var out bytes.Buffer
	var outMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&out, &outMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	print := func(v ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		for _, x := range v {
			fmt.Fprintf(&out, "%v %+v %#v\n", x, x, x)
		}
	}
	rec := &recorder{next: bearer.OAuth2(cfg)}
	first := srv.Issue()
	rec.add(first)
	clk := newClock()
	tr := newTransport(t, bearer.Config{
		Refresher:      rec,
		Base:           loopbackBase(t, 4),
		Logger:         logger,
		RefreshTimeout: time.Second,
		OnRefresh:      func(_ context.Context, ev bearer.RefreshEvent) { print(ev) },
		OnLogout:       func(_ context.Context, err error) { print(err) },
	}, first)
	bearer.SetClock(tr, clk.Now)
	get := func() {
		resp, err := tr.Client().Get(srv.APIURL + "/x")
		if err != nil {
			print(err)
			return
		}
		resp.Body.Close()
	}

	get()                      // load
	srv.RevokeAccessTokens()   // reactive refresh
	get()                      //
	clk.Advance(2 * time.Hour) // proactive refresh of an expired token
	get()                      //
	srv.FailToken(-1, authtest.ServerError(503))
	srv.RevokeAccessTokens()
	get() // transient failure
	srv.ClearFaults()
	srv.FailToken(-1, authtest.Fault{Status: 400, Body: `{"error":"invalid_grant","error_description":"bad"}`, Header: http.Header{"Content-Type": {"application/json"}}})
	get() // logout
	get() // logged out
	srv.ClearFaults()
	print(tr)

	rec.mu.Lock()
	tokens := append([]string(nil), rec.tokens...)
	rec.mu.Unlock()
	require.GreaterOrEqual(t, len(tokens), 6, "the scenario saw several tokens")
	text := out.String()
	require.Contains(t, text, "token refreshed", "the logger was used")
	require.Contains(t, text, "logged out")
	for _, tok := range tokens {
		if tok != "" {
			assert.NotContains(t, text, tok)
		}
	}
	assert.NotContains(t, text, authtest.AccessPrefix)
	assert.NotContains(t, text, authtest.RefreshPrefix)
	if t.Failed() {
		t.Log(strings.ReplaceAll(text, "\n", "\n\t"))
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestClientSecretNotInError: some servers echo the client secret in
// error_description; the refresh error must not repeat it.
func TestClientSecretNotInError(t *testing.T) {
	srv, cfg := newServer(t, authtest.Options{})
	cfg.ClientSecret = "wrong-client-secret"
	tr := newTransport(t, bearer.Config{Refresher: bearer.OAuth2(cfg), Base: loopbackBase(t, 2)}, srv.Issue())
	srv.RevokeAccessTokens()
	srv.FailToken(1, authtest.Fault{
		Status: 401,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   `{"error":"invalid_client","error_description":"Invalid client secret: wrong-client-secret"}`,
	})
	_, err := tr.Client().Get(srv.APIURL + "/x")
	require.Error(t, err)
	assert.ErrorIs(t, err, bearer.ErrLoggedOut)
	assert.Contains(t, err.Error(), "invalid_client")
	assert.NotContains(t, err.Error(), "wrong-client-secret")
	assert.Equal(t, 1, strings.Count(err.Error(), "bearer: "), "one prefix: %s", err)
}
