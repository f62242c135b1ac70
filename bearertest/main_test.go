package bearertest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/bearertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is an injectable clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newServer starts a server that is closed when the test ends.
func newServer(t *testing.T, opts bearertest.Options) *bearertest.Server {
	t.Helper()
	srv := bearertest.NewServer(opts)
	t.Cleanup(srv.Close)
	return srv
}

// oauthCtx makes x/oauth2 use the server's client.
func oauthCtx(t *testing.T, srv *bearertest.Server) context.Context {
	return context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client())
}

// headerConfig is srv.Config with Basic client authentication, so a failed
// request is not retried with the other style as autodetect would.
func headerConfig(srv *bearertest.Server) *oauth2.Config {
	cfg := srv.Config()
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	return cfg
}

// refreshWith runs one refresh_token grant through x/oauth2.
func refreshWith(t *testing.T, srv *bearertest.Server, cfg *oauth2.Config, rt string) (*oauth2.Token, error) {
	t.Helper()
	old := &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Minute)}
	return cfg.TokenSource(oauthCtx(t, srv), old).Token()
}

// reply is a response read to the end.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a map.
func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

// do sends req with the server's client and reads the whole answer.
func do(t *testing.T, srv *bearertest.Server, req *http.Request) reply {
	t.Helper()
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: body}
}

// callAPI sends method to srv.APIURL+path with an optional bearer token.
func callAPI(t *testing.T, srv *bearertest.Server, method, path, access, body string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.APIURL+path, strings.NewReader(body))
	require.NoError(t, err)
	if access != "" {
		req.Header.Set("Authorization", "Bearer "+access)
	}
	return do(t, srv, req)
}

// postForm posts a form to the token endpoint, with Basic credentials when
// user is not empty.
func postForm(t *testing.T, srv *bearertest.Server, form url.Values, user, pass string) reply {
	t.Helper()
	return postFormTo(t, srv, srv.TokenURL, form, user, pass)
}

// postFormTo posts a form to one of the server's endpoints, with Basic
// credentials when user is not empty.
func postFormTo(t *testing.T, srv *bearertest.Server, endpoint string, form url.Values, user, pass string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	return do(t, srv, req)
}

// postRefresh posts a raw body to the JSON refresh endpoint.
func postRefresh(t *testing.T, srv *bearertest.Server, body string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.RefreshURL, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	return do(t, srv, req)
}

// refreshJSON is postRefresh with {"token": rt}.
func refreshJSON(t *testing.T, srv *bearertest.Server, rt string) reply {
	t.Helper()
	b, err := json.Marshal(map[string]string{"token": rt})
	require.NoError(t, err)
	return postRefresh(t, srv, string(b))
}
