package compat_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	restyv2 "github.com/go-resty/resty/v2"
	"github.com/hashicorp/go-retryablehttp"
	restyv3 "resty.dev/v3"

	"github.com/seamlessauth/bearer"
)

// sendFunc sends one request the way a user of the library would, and
// returns the answer's status and body.
type sendFunc func(ctx context.Context, method, url string, body []byte) (status int, respBody []byte, err error)

// wired is bearer wired into a library.
type wired struct {
	tr *bearer.Transport
	// attempts counts the requests that reached the Transport: under a
	// retry layer, the layer's attempts.
	attempts *counting
	send     sendFunc
}

// setup is one library, wired as its documentation and the README say.
type setup struct {
	name string
	wire func(e *env) wired
	// retries5xx: the library retries an API's 503 by itself.
	retries5xx bool
	// wrapsErrors: the library wraps the *url.Error of http.Client in an
	// error of its own, without a Timeout method, which os.IsTimeout and
	// url.Error.Timeout do not look through.
	wrapsErrors bool
}

// setups are the libraries under test, each with the retry policy that the
// README documents.
var setups = []setup{
	{name: "net/http", wire: wireNetHTTP},
	{name: "retryablehttp", wire: wireRetryablehttp, retries5xx: true, wrapsErrors: true},
	{name: "retryablehttp StandardClient", wire: wireRetryablehttpStandard, retries5xx: true, wrapsErrors: true},
	{name: "retryablehttp as Base", wire: wireRetryablehttpAsBase, retries5xx: true},
	{name: "resty v2", wire: wireRestyV2},
	{name: "resty v3", wire: wireRestyV3},
	{name: "generated client", wire: wireGenerated},
}

func wireNetHTTP(e *env) wired {
	tr := e.transport(bearer.Config{})
	cnt := &counting{rt: tr}
	return wired{tr: tr, attempts: cnt, send: stdSend(&http.Client{Transport: cnt})}
}

// stdSend sends with an *http.Client; a body is a *bytes.Reader, so that
// http.NewRequest sets GetBody.
func stdSend(c *http.Client) sendFunc {
	return func(ctx context.Context, method, url string, body []byte) (int, []byte, error) {
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, url, r)
		if err != nil {
			return 0, nil, err
		}
		return readResponse(c.Do(req))
	}
}

func readResponse(resp *http.Response, err error) (int, []byte, error) {
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// newRetryableClient is retryablehttp's default client with its waits made
// tiny and its logger silenced; its retry policy is its default one.
func newRetryableClient(e *env) *retryablehttp.Client {
	rc := retryablehttp.NewClient()
	rc.Logger = nil
	rc.RetryWaitMin, rc.RetryWaitMax = time.Millisecond, time.Millisecond
	e.t.Cleanup(rc.HTTPClient.CloseIdleConnections)
	return rc
}

// retryableUnder is the README's recipe: the Transport under
// retryablehttp's client, with a CheckRetry that leaves bearer's errors
// alone (checkRetry, in example_test.go).
func retryableUnder(e *env, policy retryablehttp.CheckRetry) (*retryablehttp.Client, wired) {
	rc := newRetryableClient(e)
	tr := e.transport(bearer.Config{Base: rc.HTTPClient.Transport})
	cnt := &counting{rt: tr}
	rc.HTTPClient.Transport = cnt
	if policy != nil {
		rc.CheckRetry = policy
	}
	return rc, wired{tr: tr, attempts: cnt}
}

func wireRetryablehttp(e *env) wired { return retryableWired(e, checkRetry) }

// retryableWired is the Transport under retryablehttp's Client.Do with
// policy as CheckRetry (nil: retryablehttp's default).
func retryableWired(e *env, policy retryablehttp.CheckRetry) wired {
	rc, w := retryableUnder(e, policy)
	w.send = retryableSend(rc)
	return w
}

// retryableSend sends with retryablehttp's own Request and Client.Do, which
// buffer the body and set GetBody.
func retryableSend(rc *retryablehttp.Client) sendFunc {
	return func(ctx context.Context, method, url string, body []byte) (int, []byte, error) {
		var raw any
		if body != nil {
			raw = body
		}
		req, err := retryablehttp.NewRequestWithContext(ctx, method, url, raw)
		if err != nil {
			return 0, nil, err
		}
		return readResponse(rc.Do(req))
	}
}

func wireRetryablehttpStandard(e *env) wired {
	rc, w := retryableUnder(e, checkRetry)
	w.send = stdSend(rc.StandardClient())
	return w
}

// wireRetryablehttpAsBase puts the Transport on top and retryablehttp under
// it as its Base, as the README says: token requests go through a plain
// client over retryablehttp's transport, so that they are not retried five
// times each, and retryablehttp's inner client does not follow redirects,
// so that they come back up through the Transport.
func wireRetryablehttpAsBase(e *env) wired { return retryableBase(e, true) }

// retryableBase is the Transport over retryablehttp; documented adds the
// README's TokenClient and CheckRedirect.
func retryableBase(e *env, documented bool) wired {
	rc := newRetryableClient(e)
	cfg := bearer.Config{Base: &retryablehttp.RoundTripper{Client: rc}}
	if documented {
		cfg.TokenClient = &http.Client{Transport: rc.HTTPClient.Transport}
		rc.HTTPClient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	tr := e.transport(cfg)
	cnt := &counting{rt: tr}
	return wired{tr: tr, attempts: cnt, send: stdSend(&http.Client{Transport: cnt})}
}

const restyRetries = 3

func wireRestyV2(e *env) wired { return restyV2Wired(e, restyV2Condition) }

// restyV2Wired is the Transport under resty v2 with three retries and a
// retry condition; nil leaves resty's default (retry on any error).
func restyV2Wired(e *env, cond restyv2.RetryConditionFunc) wired {
	tr := e.transport(bearer.Config{})
	cnt := &counting{rt: tr}
	c := restyv2.New().SetTransport(cnt).
		SetRetryCount(restyRetries).
		SetRetryWaitTime(time.Millisecond).SetRetryMaxWaitTime(time.Millisecond)
	if cond != nil {
		c.AddRetryCondition(cond)
	}
	c.SetLogger(silent{})
	return wired{tr: tr, attempts: cnt, send: restyV2Send(c)}
}

func restyV2Send(c *restyv2.Client) sendFunc {
	return func(ctx context.Context, method, url string, body []byte) (int, []byte, error) {
		r := c.R().SetContext(ctx)
		if body != nil {
			r.SetHeader("Content-Type", "application/json").SetBody(body)
		}
		resp, err := r.Execute(method, url)
		if err != nil {
			return 0, nil, err
		}
		return resp.StatusCode(), resp.Body(), nil
	}
}

func wireRestyV3(e *env) wired { return restyV3Wired(e, restyV3Condition) }

// restyV3Wired is the Transport under resty v3 with three retries and, if
// cond is not nil, resty's default conditions replaced by cond.
func restyV3Wired(e *env, cond restyv3.RetryConditionFunc) wired {
	tr := e.transport(bearer.Config{})
	cnt := &counting{rt: tr}
	c := restyv3.New().SetTransport(cnt).
		SetRetryCount(restyRetries).
		SetRetryWaitTime(time.Millisecond).SetRetryMaxWaitTime(time.Millisecond)
	if cond != nil {
		c.SetRetryDefaultConditions(false).AddRetryConditions(cond)
	}
	c.SetLogger(silent{})
	e.t.Cleanup(func() { _ = c.Close() })
	return wired{tr: tr, attempts: cnt, send: restyV3Send(c)}
}

func restyV3Send(c *restyv3.Client) sendFunc {
	return func(ctx context.Context, method, url string, body []byte) (int, []byte, error) {
		r := c.R().SetContext(ctx)
		if body != nil {
			r.SetHeader("Content-Type", "application/json").SetBody(body)
		}
		resp, err := r.Execute(method, url)
		if err != nil {
			return 0, nil, err
		}
		return resp.StatusCode(), resp.Bytes(), nil
	}
}

func wireGenerated(e *env) wired {
	tr := e.transport(bearer.Config{})
	cnt := &counting{rt: tr}
	api := newThingsClient("", withHTTPClient(&http.Client{Transport: cnt}))
	return wired{tr: tr, attempts: cnt, send: api.send}
}

// silent is a resty logger (v2 and v3) that keeps resty's warnings about
// failed attempts out of the test output.
type silent struct{}

func (silent) Errorf(string, ...any) {}
func (silent) Warnf(string, ...any)  {}
func (silent) Debugf(string, ...any) {}
