package conformance

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// mock is github.com/oauth2-proxy/mockoidc, a small OIDC server for tests.
var mock = provider{
	short:   "mockoidc",
	name:    "github.com/oauth2-proxy/mockoidc",
	version: "v0.0.0-20261103160011-e06ed0b7cb7f",
	start:   startMock,
	noDPoP:  "mockoidc has no DPoP (RFC 9449)",
	unsupported: map[string]string{
		"reactive-after-revocation": "mockoidc has no revocation endpoint (RFC 7009) and its access tokens are " +
			"stateless JWTs: its only server-side state is the session, and dropping it kills the refresh token too",
		"reused-refresh-token-logs-out-once": "mockoidc does not rotate refresh tokens: one used twice is still good, " +
			"so there is no reuse to refuse",
		"client-credentials": "mockoidc has no client credentials grant",
		"logout-revokes":     "mockoidc has no revocation endpoint (RFC 7009) and no introspection (RFC 7662)",
	},
}

// mockKey is one signing key for every mockoidc server of the run: making a
// new RSA key per server would only cost time.
var mockKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func startMock(t *testing.T, accessTTL time.Duration) *fixture {
	t.Helper()
	hc := loopbackClient(t)
	api := newResource(t)
	grants := newGrantCounter()

	m, err := mockoidc.NewServer(mockKey())
	require.NoError(t, err)
	m.AccessTTL = accessTTL
	m.RefreshTTL = 24 * time.Hour // outlives every jump of the server's clock below
	require.NoError(t, m.AddMiddleware(grants.wrap))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, m.Start(ln, nil))
	t.Cleanup(func() {
		// Shutdown waits up to 5 s for a connection that has not sent a
		// request yet: the client's spare connections go first.
		hc.CloseIdleConnections()
		m.Shutdown()
	})

	md := discover(t, hc, m.DiscoveryEndpoint())
	cfg := &oauth2.Config{
		ClientID:     m.ClientID,
		ClientSecret: m.ClientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:  md.Authorization,
			TokenURL: md.Token,
			// The token endpoint reads client_id and client_secret from the
			// form only, although discovery lists client_secret_basic.
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: api.callback(),
		Scopes:      []string{"openid"}, // offline_access is refused as an unknown scope
	}
	api.start(mockUserinfo(hc, md.Userinfo))

	// expire moves the server's clock past the access tokens' lifetime. The
	// server reads its offset without a lock, so it is only moved while no
	// request is in flight.
	expire := func(*testing.T) { m.FastForward(m.AccessTTL + time.Second) }
	f := &fixture{
		meta:   md,
		cfg:    cfg,
		hc:     hc,
		api:    api,
		grants: grants,
		adjust: mockExpiry,
		// The session store is the server's only state: dropping the
		// session makes its refresh token (and access token) unknown. The
		// access token is a JWT that the server checks for expiry before it
		// looks the session up, so it is expired as well, as a client would
		// meet it.
		revokeRefresh: func(t *testing.T, _ *oauth2.Token) {
			for id := range m.SessionStore.Store {
				delete(m.SessionStore.Store, id)
			}
			expire(t)
		},
		expireAccess: expire,
		rotates:      false,
	}
	f.login = mockExpiry(login(t, hc, cfg, user{}))
	return f
}

// mockExpiry sets a token's Expiry from the exp claim of its JWT access
// token. mockoidc sends expires_in in nanoseconds (a time.Duration marshalled
// as is), which x/oauth2 reads as seconds and caps at 2^31-1 s, so the
// Expiry it computes is decades away. A client of this server has to do the
// same to refresh before expiry.
func mockExpiry(tok *oauth2.Token) *oauth2.Token {
	_, payload, ok := strings.Cut(tok.AccessToken, ".")
	payload, _, ok2 := strings.Cut(payload, ".")
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if !ok || !ok2 || err != nil {
		return tok
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(raw, &claims) != nil || claims.Exp == 0 {
		return tok
	}
	c := *tok
	c.Expiry = time.Unix(claims.Exp, 0)
	return &c
}

// mockUserinfo validates a token by calling the userinfo endpoint with it,
// which checks the JWT's signature and expiry against the server's clock.
func mockUserinfo(hc *http.Client, endpoint string) validator {
	return func(ctx context.Context, token string) (tokenState, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
		if err != nil {
			return tokenState{}, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			return tokenState{}, err
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return tokenState{active: true}, nil
		case http.StatusUnauthorized:
			return tokenState{}, nil
		}
		return tokenState{}, errors.New("userinfo answered " + resp.Status)
	}
}
