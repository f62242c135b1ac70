// Package otelbearer reports what a [bearer.Transport] does to OpenTelemetry:
// its refreshes, retries and logouts as metrics, and each shared refresh as a
// span. It is a module of its own, so that users of bearer who do not use
// OpenTelemetry never download it.
//
// One call instruments a [bearer.Config] before [bearer.New]:
//
//	cfg := bearer.Config{Refresher: bearer.OAuth2(oauthCfg)}
//	if err := otelbearer.Instrument(&cfg); err != nil { // the global providers
//		return err
//	}
//	tr, err := bearer.New(cfg)
//
// Instrument wires the Config's hooks (OnRefreshStart, OnRefresh, OnRetry,
// OnLogout) and calls the hooks that were set before it, too. It adds nothing
// to a request whose token is valid: the hooks run only when a refresh, a
// retry or a logout happens.
//
// # Metrics
//
// Under the instrumentation scope [ScopeName]:
//
//	name                             instrument  unit       what
//	bearer.refreshes                 counter     {refresh}  shared refreshes, when each ends
//	bearer.refresh.duration          histogram   s          how long each took, retries included
//	bearer.retries                   counter     {request}  requests sent again with a new token after a rejection
//	bearer.logouts                   counter     {logout}   sessions ended by a permanent refresh failure
//	bearer.token.remaining_lifetime  gauge       s          time until the current token expires
//
// The refresh metrics have the attributes bearer.refresh.reason ("expiring",
// "rejected", "no-token") and bearer.refresh.outcome ("ok", "adopted" when a
// token that another holder of the store saved was taken instead,
// "transient_failure", "permanent_failure"); failures and logouts also have
// error.type (see below). No attribute holds a token, an identity or an error
// message.
//
// bearer.token.remaining_lifetime follows the refreshes: it has no data point
// before the first successful refresh (a token loaded from the store or given
// to [bearer.Transport.SetToken] shows from its first refresh on), after a
// logout, or when the token has no expiry. It keeps the expiry of the last
// token through a transient failure, and goes negative once that token has
// expired.
//
// # Spans
//
// Each shared refresh is one span, "bearer.refresh", of kind internal, a child
// of the span in the context of the request that started the refresh. The
// token request is made under it: with a Base or TokenClient instrumented by
// otelhttp, the token request's client span is its child. Attributes:
// bearer.refresh.reason and bearer.refresh.outcome as above,
// bearer.refresh.attempts (the refresher calls), and on failure
// http.response.status_code (the token endpoint's last answer, if any),
// bearer.refresh.error_code (its OAuth2 error code) and error.type. The
// status is Error on failure, described by the outcome alone.
//
// error.type is the token endpoint's OAuth2 error code when it is one of
// those that RFC 6749, RFC 8628 and RFC 9449 define ("invalid_grant",
// "server_error", ...), else its HTTP status ("503"), else "timeout" when a
// deadline passed, else "_OTHER". bearer.refresh.error_code is a defined
// code or "_OTHER". Codes outside the RFCs' lists are not reported as they
// are, since a server may put anything there.
package otelbearer
