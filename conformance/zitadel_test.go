package conformance

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
)

// zitadel is the OpenID Provider of github.com/zitadel/oidc/v3 (package
// op), wired as the module's own example server does it (exampleop, with
// its login page) on the module's in-memory example storage.
var zitadel = provider{
	short:   "zitadel",
	name:    "github.com/zitadel/oidc/v3",
	version: "v3.52.0",
	start:   startZitadel,
	noDPoP:  "op binds no token to a DPoP key: v3.52.0 has only helpers for the OpenID Connect Key Binding draft, which binds ID tokens",
	unsupported: map[string]string{
		"client-credentials": "not wired: the example storage's client credentials user is no registered client, " +
			"and its introspection answers only a client in the token's audience, so the resource could not validate its tokens",
	},
}

const (
	zitadelClientID = "conformance-web"
	zitadelSecret   = "conformance-web-secret"
	zitadelPassword = "verysecure" // the example user store's password
)

// zitadelAuth is how the tests authenticate as the client at introspection
// and revocation. The example storage answers introspection only for a
// client in the token's audience, so the resource introspects as the
// client itself.
var zitadelAuth = clientAuth{id: zitadelClientID, secret: zitadelSecret}

// zitadelStorage is the example storage with one change: the example
// storage gives every access token five minutes, hard-coded, so this wrapper
// gives them accessTTL instead, both in what the token endpoint answers
// (expires_in) and in what introspection and userinfo accept. Everything
// else, revocation and rotation included, is the example storage's own.
type zitadelStorage struct {
	*storage.Storage
	accessTTL time.Duration

	mu     sync.Mutex
	expiry map[string]time.Time // access token ID → when it expires
}

// CreateAccessAndRefreshTokens issues the tokens of the code and refresh
// grants with the short lifetime.
func (s *zitadelStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	id, refresh, _, err := s.Storage.CreateAccessAndRefreshTokens(ctx, req, current)
	if err != nil {
		return "", "", time.Time{}, err
	}
	exp := time.Now().Add(s.accessTTL)
	s.mu.Lock()
	s.expiry[id] = exp
	s.mu.Unlock()
	return id, refresh, exp, nil
}

// expired reports whether the access token with this ID is past its
// lifetime.
func (s *zitadelStorage) expired(tokenID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.expiry[tokenID]
	return ok && !time.Now().Before(exp)
}

// expireAll ends the lifetime of every access token issued so far.
func (s *zitadelStorage) expireAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := time.Now().Add(-time.Second)
	for id := range s.expiry {
		s.expiry[id] = past
	}
}

// SetIntrospectionFromToken answers inactive for an expired token.
func (s *zitadelStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	if s.expired(tokenID) {
		return errors.New("token is expired")
	}
	if err := s.Storage.SetIntrospectionFromToken(ctx, resp, tokenID, subject, clientID); err != nil {
		return err
	}
	s.mu.Lock()
	resp.Expiration = oidc.FromTime(s.expiry[tokenID])
	s.mu.Unlock()
	return nil
}

// SetUserinfoFromToken refuses an expired token.
func (s *zitadelStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	if s.expired(tokenID) {
		return errors.New("token is expired")
	}
	return s.Storage.SetUserinfoFromToken(ctx, info, tokenID, subject, origin)
}

func startZitadel(t *testing.T, accessTTL time.Duration) *fixture {
	t.Helper()
	hc := loopbackClient(t)
	api := newResource(t)
	grants := newGrantCounter()

	var handler http.Handler
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.ServeHTTP(w, r)
	}))
	issuer := "http://" + srv.Listener.Addr().String()
	client := storage.WebClient(zitadelClientID, zitadelSecret, api.callback())
	st := &zitadelStorage{
		Storage:   storage.NewStorageWithClients(storage.NewUserStore(issuer), map[string]*storage.Client{zitadelClientID: client}),
		accessTTL: accessTTL,
		expiry:    map[string]time.Time{},
	}
	// SetupServer logs every request through slog's default logger and,
	// given a logger, installs it as that default: a discarding one keeps
	// the test output quiet.
	handler = grants.wrap(exampleop.SetupServer(issuer, st, slog.New(slog.DiscardHandler), false))
	srv.Start()
	t.Cleanup(srv.Close)

	md := discover(t, hc, issuer+"/.well-known/openid-configuration")
	require.NotEmpty(t, md.Introspection)
	require.NotEmpty(t, md.Revocation)
	cfg := &oauth2.Config{
		ClientID:     zitadelClientID,
		ClientSecret: zitadelSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   md.Authorization,
			TokenURL:  md.Token,
			AuthStyle: oauth2.AuthStyleInHeader, // the client is registered for client_secret_basic
		},
		RedirectURL: api.callback(),
		Scopes:      []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess},
	}
	asResource := introspect(hc, md.Introspection, zitadelAuth)
	api.start(asResource)

	f := &fixture{
		introspect: asResource,
		meta:       md,
		cfg:        cfg,
		hc:         hc,
		api:        api,
		grants:     grants,
		revokeAccess: func(t *testing.T, tok *oauth2.Token) {
			revoke(t, hc, md.Revocation, zitadelAuth, tok.AccessToken, "access_token")
		},
		revokeRefresh: func(t *testing.T, tok *oauth2.Token) {
			revoke(t, hc, md.Revocation, zitadelAuth, tok.RefreshToken, "refresh_token")
		},
		expireAccess: func(*testing.T) { st.expireAll() },
		rotates:      true,
	}
	hostname, _, _ := strings.Cut(srv.Listener.Addr().String(), ":")
	f.login = login(t, hc, cfg, user{name: "test-user@" + hostname, password: zitadelPassword})
	return f
}
