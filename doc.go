// Package bearer keeps an API client logged in. Its [Transport] is an
// [http.RoundTripper] that wraps any base transport: it attaches the access
// token to each request for the hosts it belongs to, refreshes the token
// shortly before it expires and again when the server answers 401, collapses
// every concurrent refresh into one, retries the rejected request once with
// the new token, persists the token pair through a [store.Store], and calls
// Config.OnLogout only when the refresh token is really dead.
//
// It is the "refresh-token interceptor" that web clients write by hand, done
// so that it is safe under thousands of concurrent requests, with refresh
// token rotation and reuse detection, and across processes that share one
// token.
//
// # The flow
//
//	request ─► token fresh? ──yes───────────────────────┐
//	               │no                                  │
//	               ▼                                    ▼
//	         stale? ──yes──► start the shared refresh ► send with token
//	               │no (must wait)   in the background  │
//	               ▼                                    │
//	         shared refresh ─► send with the new token ─┤
//	                                                    │
//	                                     401? ├──no──► response
//	                                          │yes
//	                                          ▼
//	  token already replaced? ──no──► shared refresh (one per token)
//	               │yes                     │
//	               ▼                        ▼
//	      send once more with the new token (body replayed via GetBody)
//
// A shared refresh is keyed by the token it replaces, so any number of
// requests that fail with the same token, and the background refresh of that
// token, cause exactly one call to the [Refresher]. When the store is also a
// [store.Locker], the refresh runs under its lock: reload, adopt a token that
// another process saved, or else refresh with the newest refresh token and
// save it. A refresh token is therefore never used twice, which servers that
// rotate refresh tokens treat as theft. If a token adopted from the store is
// rejected too, the Transport refreshes for real and sends once more: a
// request is sent at most three times.
//
// # When a request waits
//
// A token is in one of three states, decided for each request from its
// expiry and its lifetime (expiry minus the moment it was obtained or
// loaded):
//
//   - fresh, before expiry minus Config.Leeway (the leeway is at most half
//     the lifetime): the request is sent with it;
//   - stale, from there until the must-wait margin before expiry, which is
//     min(5s, lifetime/10, leeway): the request is sent at once with the
//     still-valid token, and the shared refresh starts in the background;
//   - must wait, within the margin, expired, missing (or only a refresh
//     token) or rejected by a 401: the request waits for the shared refresh.
//
// A background refresh that fails transiently leaves the valid token in use
// and is tried again after a pause (the server's Retry-After, if it gave
// one); it is reported through Config.OnRefresh and the Logger. One that
// fails permanently ends the session at once, as a waited-for one does: the
// requests already sent with the valid token complete, Config.OnLogout runs
// once, and later requests fail with [ErrLoggedOut]. With
// Config.WaitForRefresh, a stale token is waited for as well. A token that
// the Refresher hands over already expired by the local clock (a skewed
// clock) is used until the server rejects it, with one warning in the log.
//
// # Concurrency
//
// A Transport is safe for concurrent use. The token is read lock-free on each
// request; only refreshes are serialised. A request whose context ends while
// it waits for a refresh returns at once with an error wrapping the context's
// error; the refresh goes on for the others under Config.RefreshTimeout, with
// the values but not the cancellation of the context that started it. The
// Refresher, the Store and the hooks may therefore run on a goroutine of the
// Transport's; a panic in any of them fails that refresh with an error (and
// one error record in the log), never the process. [Transport.SetToken] and
// [Transport.Logout] hold the store's lock, so that no refresh elsewhere
// undoes them; Config.OnLogout runs after that lock is released, and a
// SetToken that comes while it runs returns after it. A Logout whose
// Refresher is a [Revoker] then revokes the token at the server.
//
// # Many users
//
// A backend that calls APIs on behalf of many users sends through one
// [Pool]: each request names its user with [WithIdentity], and is sent as
// that user's own Transport, built on demand from a template Config and the
// user's store, would send it. A request that names nobody fails with
// [ErrNoIdentity]. Idle users are dropped from memory and reloaded from
// their store on their next request.
//
// # Sender-constrained tokens (DPoP)
//
// With Config.DPoP, a [dpop.Key], tokens the server binds to the key (RFC
// 9449; token_type DPoP) are sent as "Authorization: DPoP <token>" with a
// new proof in the DPoP header at every send, the retry after a 401 and
// each redirect hop included; token requests carry proofs too, so that the
// refresh token stays bound. Nonces that servers give (the DPoP-Nonce
// header of any response) are kept per origin, and a request that a server
// answers with use_dpop_nonce is sent once more with the new nonce. A
// DPoP-bound token is never sent as Bearer; without a key it is not sent.
//
// A server that ignores DPoP issues Bearer tokens, and they are sent as it
// issued them. To refuse that, wrap the Refresher and return a permanent
// error for a token whose TokenType is not DPoP, and check the login's:
//
//	refresher := bearer.RefresherFunc(func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
//		tok, err := inner.Refresh(ctx, cur)
//		if err == nil && !strings.EqualFold(tok.TokenType, "DPoP") {
//			return nil, bearer.Permanent(errors.New("the server did not bind the token to the key"))
//		}
//		return tok, err
//	})
//
// # Departures from the RoundTripper rules
//
// net/http asks a RoundTripper not to interpret responses and to return an
// error only when no response was obtained. A Transport does read the status
// of each response (Config.ShouldRefresh), and when the refresh that a 401
// triggered fails, RoundTrip closes the 401 and returns the refresh error
// instead, as a refresh interceptor does: the error says why the request
// failed (errors.Is(err, ErrLoggedOut), errors.As with a *[RefreshError]).
// It sends a rejected request a second time, which a RoundTripper normally
// leaves to its caller; a request whose body cannot be replayed (no GetBody)
// is not sent again: the refresh still happens, and the 401 is returned.
//
// # Where the token goes
//
// Only to Config.Hosts when set; otherwise to the request's host, and on a
// redirect hop only to that host or its subdomains. Never over plain http to
// a host that is not loopback, unless Config.AllowHTTP. A request that
// already has an Authorization header, or whose context was made with
// [SkipAuth], is sent as it is. No token ever appears in an error, a log
// record or the output of the package's String methods.
package bearer
