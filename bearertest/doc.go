// Package bearertest is a real, in-process OAuth2 authorization server and
// protected API on a loopback [httptest.Server], for testing API clients
// that keep a login: yours, built on bearer or not, as bearer's own tests,
// examples, demo and benchmarks do. Nothing in it is a mock: clients talk
// HTTP to it, and it applies the rules a production server applies,
// refresh-token rotation and reuse detection included, with faults to
// inject and counters to assert on. It is to a token server what
// net/http/httptest is to an HTTP server.
//
// Endpoints (all under [Server.URL]):
//
//	POST /token      RFC 6749: refresh_token, authorization_code (with PKCE,
//	                 RFC 7636) and client_credentials grants; client
//	                 authentication by HTTP Basic or in the form body
//	GET  /authorize  approves at once and redirects with code and state
//	POST /refresh    axios-style JSON: {"token"} → {"accessToken","refreshToken"?,"expiresIn"}
//	POST /revoke     RFC 7009 revocation, client authentication as at /token
//	     /api, /api/ protected by "Authorization: Bearer"; /api/echo echoes the body
//
// Each login ([Server.Issue], or a code or client-credentials grant) starts a
// lineage of tokens. Refreshes extend it; with [Options].Rotate each refresh
// retires the presented refresh token, and with [Options].ReuseDetection a
// retired token coming back revokes the whole lineage (RFC 9700 §4.14.2).
// Tests revoke tokens by force ([Server.RevokeAccessTokens],
// [Server.RevokeRefreshTokens], [Server.RevokeLineage]), inject faults
// ([Server.FailToken], [Server.FailRevoke], [Server.FailAPI]), drive expiry
// with [Options].Now, ask whether a token is still good with
// [Server.Active] and read counters with [Server.Stats]. A client revokes
// at [Server].RevocationURL: a refresh token ends its lineage, an access
// token itself.
//
// Tokens are opaque random strings with fixed prefixes ([AccessPrefix],
// [RefreshPrefix], [CodePrefix]) so output can be searched for leaks; the
// server itself never logs or prints them.
//
// The package takes no *testing.T, so main programs can use it too:
//
//	srv := bearertest.NewServer(bearertest.Options{AccessTTL: time.Minute, Rotate: true})
//	defer srv.Close()
//	tok := srv.Issue() // log in
//	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client())
//	client := srv.Config().Client(ctx, tok) // refreshes through srv.TokenURL
//	resp, err := client.Get(srv.APIURL + "/things")
//
// A Server is safe for concurrent use and built for load: counters are
// atomic, and locks are held only around map operations.
package bearertest
