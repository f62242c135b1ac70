package compat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer"
)

// The types below are shaped as OpenAPI generators write clients
// (oapi-codegen's Client, openapi-generator's APIClient): a server URL, an
// HTTP client given as an *http.Client or as an interface with Do, request
// editors, and one method per operation that marshals its body into a
// bytes.Reader.

// httpRequestDoer is oapi-codegen's HttpRequestDoer.
type httpRequestDoer interface {
	Do(req *http.Request) (*http.Response, error)
}

// requestEditorFn is oapi-codegen's RequestEditorFn.
type requestEditorFn func(ctx context.Context, req *http.Request) error

type thingsClient struct {
	Server         string
	Client         httpRequestDoer
	RequestEditors []requestEditorFn
}

type clientOption func(*thingsClient)

func withHTTPClient(doer httpRequestDoer) clientOption {
	return func(c *thingsClient) { c.Client = doer }
}

func withRequestEditorFn(fn requestEditorFn) clientOption {
	return func(c *thingsClient) { c.RequestEditors = append(c.RequestEditors, fn) }
}

func newThingsClient(server string, opts ...clientOption) *thingsClient {
	c := &thingsClient{Server: server}
	for _, o := range opts {
		o(c)
	}
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	return c
}

// thing is the body of the API's one operation.
type thing struct {
	Name string `json:"name"`
}

// CreateThing is a generated operation: POST {server}/api/echo with a JSON
// body.
func (c *thingsClient) CreateThing(ctx context.Context, body thing) (*http.Response, error) {
	buf, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return c.do(ctx, http.MethodPost, "/api/echo", bytes.NewReader(buf))
}

// send is what every generated operation does, for the tests that take any
// method and URL; a body must be JSON.
func (c *thingsClient) send(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		buf, err := json.Marshal(json.RawMessage(body))
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(buf)
	}
	return readResponse(c.do(ctx, method, path, r))
}

func (c *thingsClient) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Server+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Add("Content-Type", "application/json")
	}
	for _, edit := range c.RequestEditors {
		if err := edit(ctx, req); err != nil {
			return nil, err
		}
	}
	return c.Client.Do(req)
}

// TestGeneratedClientOperation: a generated operation's request goes
// through the Transport like any other; after a revocation its body is
// replayed with the new token.
func TestGeneratedClientOperation(t *testing.T) {
	e := newEnv(t)
	tr := e.transport(bearer.Config{})
	api := newThingsClient(e.srv.URL, withHTTPClient(tr.Client()))
	e.srv.RevokeAccessTokens()
	before := e.stats()

	resp, err := api.CreateThing(context.Background(), thing{Name: "kettle"})
	require.NoError(t, err)
	status, body, err := readResponse(resp, nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	assert.JSONEq(t, `{"name":"kettle"}`, string(body))
	got := e.since(before)
	assert.EqualValues(t, 1, got.Refreshes)
	assert.EqualValues(t, 1, got.APIUnauthorized, "the first send was rejected, the replay was not")
}

// TestGeneratedClientOwnAuth: a generator's own bearer auth (a request
// editor, or openapi-generator's ContextAccessToken) sets Authorization, and
// a request that has one passes through the Transport untouched: no refresh,
// the 401 reaches the caller. Configure one or the other, not both.
func TestGeneratedClientOwnAuth(t *testing.T) {
	e := newEnv(t)
	tok := e.srv.Issue()
	tr := e.transport(bearer.Config{})
	api := newThingsClient(e.srv.URL, withHTTPClient(tr.Client()),
		withRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			return nil
		}))
	e.srv.RevokeAccessTokens()
	before := e.stats()

	status, _, err := api.send(context.Background(), http.MethodGet, "/api/me", nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Zero(t, e.since(before).TokenRequests)
}
