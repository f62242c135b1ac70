package conformance

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/seamlessauth/bearer/dpop"
)

// oidcProvider is panva's oidc-provider (npm), a certified OpenID Provider,
// run with the machine's Node.js by oidcprovider/server.mjs. Its version is
// pinned by oidcprovider/package-lock.json and installed from it with
// `npm ci` (.ci/run does).
var oidcProvider = provider{
	short:   "oidc-provider",
	name:    "oidc-provider",
	version: "8.8.1",
	pinned:  "oidcprovider/package-lock.json",
	start:   startOIDCProvider,
	unsupported: map[string]string{
		"wrong-client-credentials": "the login's client is public (token_endpoint_auth_method none), as a " +
			"native or browser app is: it has no secret to get wrong",
	},
}

// The clients that server.mjs registers.
const (
	opPublicClient  = "conformance-public"
	opServiceClient = "conformance-service"
	opServiceSecret = "conformance-service-secret"
)

var (
	opPublicAuth  = clientAuth{id: opPublicClient}
	opServiceAuth = clientAuth{id: opServiceClient, secret: opServiceSecret}
)

// startOIDCProvider runs server.mjs behind a front server of the test's
// own: the front is the issuer, counts the token requests and forwards
// every request to the Node.js server unchanged (its Host header too, so
// that the URLs the provider builds are the front's).
func startOIDCProvider(t *testing.T, accessTTL time.Duration) *fixture {
	t.Helper()
	secs := int(accessTTL / time.Second)
	require.Equal(t, accessTTL, time.Duration(secs)*time.Second, "oidc-provider's lifetimes are whole seconds")
	hc := loopbackClient(t)
	api := newResource(t)
	grants := newGrantCounter()

	front := httptest.NewUnstartedServer(nil)
	issuer := "http://" + front.Listener.Addr().String()
	node := startNode(t, "oidcprovider", "server.mjs",
		"OP_ISSUER="+issuer,
		"OP_ACCESS_TTL="+strconv.Itoa(secs),
		"OP_REDIRECT_URI="+api.callback(),
	)
	back := &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(node.port))}
	toNode := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(toNode.CloseIdleConnections)
	userinfo := &statusCounter{path: "/me"} // the provider's default userinfo route
	front.Config.Handler = grants.wrap(userinfo.wrap(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(back)
			r.Out.Host = r.In.Host
		},
		Transport: toNode,
	}))
	front.Start()
	t.Cleanup(front.Close)

	md := discover(t, hc, issuer+"/.well-known/openid-configuration")
	require.NotEmpty(t, md.Introspection)
	require.NotEmpty(t, md.Revocation)
	cfg := &oauth2.Config{
		ClientID: opPublicClient,
		Endpoint: oauth2.Endpoint{
			AuthURL:   md.Authorization,
			TokenURL:  md.Token,
			AuthStyle: oauth2.AuthStyleInParams, // a public client: client_id in the form, no secret
		},
		RedirectURL: api.callback(),
		Scopes:      []string{"openid", "offline_access"},
	}
	// The resource server introspects as the confidential client.
	asResource := introspect(hc, md.Introspection, opServiceAuth)
	api.start(asResource)

	f := &fixture{
		meta:   md,
		cfg:    cfg,
		hc:     hc,
		api:    api,
		grants: grants,
		service: &clientcredentials.Config{
			ClientID:     opServiceClient,
			ClientSecret: opServiceSecret,
			TokenURL:     md.Token,
			AuthStyle:    oauth2.AuthStyleInHeader, // registered for client_secret_basic
		},
		revokeAccess: func(t *testing.T, tok *oauth2.Token) {
			revoke(t, hc, md.Revocation, opPublicAuth, tok.AccessToken, "access_token")
		},
		revokeRefresh: func(t *testing.T, tok *oauth2.Token) {
			revoke(t, hc, md.Revocation, opPublicAuth, tok.RefreshToken, "refresh_token")
		},
		introspect:         asResource,
		introspectsRefresh: true,
		userinfo:           userinfo,
		expireAccess:       func(t *testing.T) { node.command(t, "expire-access") },
		rotates:            true,
		reuseDetection:     true,
	}
	// expireBy expires the access tokens by less than the server's clock
	// tolerance, for the test that shows it.
	f.expireBy = func(t *testing.T, ago time.Duration) {
		node.command(t, "expire-access "+strconv.Itoa(int(ago/time.Second)))
	}
	// devInteractions' login page takes any name and password. The consent
	// page follows, because offline_access is granted only with
	// prompt=consent (OpenID Connect Core §11): without it the scope is
	// dropped and no refresh token is issued.
	who, consent := user{name: "conformance-user", password: "any"}, oauth2.SetAuthURLParam("prompt", "consent")
	f.login = login(t, hc, cfg, who, consent)
	f.dpopLogin = func(t *testing.T, key *dpop.Key) *oauth2.Token {
		return loginExchanging(t, hc, key.Client(hc), cfg, who, consent)
	}
	require.Equal(t, md.Issuer+userinfo.path, md.Userinfo)
	return f
}
