package bearer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/store"
)

// FuzzRoundTrip runs a Transport through a few operations read from the
// input: requests to random hosts and schemes, with and without bodies,
// redirect hops, the caller's own Authorization or SkipAuth, answered by a
// fake base with random statuses, challenges, errors and bodies; refreshes
// that succeed, fail transiently or fail permanently; SetToken, Logout and
// the passing of time. After each request it checks that nothing panicked,
// that an error comes without a response, that every request and response
// body was closed exactly once and a returned body was not read, that no
// token went where it may not, that a request was retried at most once
// and only after a 401 and with another token, that a request that may not
// carry the token is passed through without a refresh, that after a logout
// requests fail fast, that no error shows a token, and that no token
// generation was refreshed twice.
func FuzzRoundTrip(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &fuzzScript{data: data}
		clk := newClock()
		answers := &fuzzAnswers{s: s}
		base := &fakeBase{respond: answers.respond}
		ref := &fuzzRefresher{s: s, now: clk.Now, refreshedOff: map[string]bool{}, rotatedAway: map[string]bool{}}
		cfg := bearer.Config{Refresher: ref, Base: base, AllowHTTP: s.pick(4) == 0}
		if s.flag() {
			cfg.Hosts = [][]string{{"api.example.com"}, {"example.com", "localhost"}}[s.pick(2)]
		}
		var initial *oauth2.Token
		if s.pick(4) != 0 {
			initial = &oauth2.Token{AccessToken: "fz-a-0", RefreshToken: "fz-r-0", TokenType: "Bearer", Expiry: fuzzExpiry(s, clk.Now())}
			ref.secrets = append(ref.secrets, initial.AccessToken, initial.RefreshToken)
		}
		cfg.Store = store.NewMemory(initial)
		if s.flag() {
			cfg.Store = struct{ store.Store }{cfg.Store} // not a store.Locker
		}
		tr, err := bearer.New(cfg)
		require.NoError(t, err)
		bearer.SetClock(tr, clk.Now)
		bearer.SetRetry(tr, 2, func(int) time.Duration { return 0 })

		loggedOut := false
		for op := range 1 + s.pick(6) {
			switch s.pick(10) {
			case 8:
				tok := &oauth2.Token{AccessToken: fmt.Sprintf("fz-s-%d", op), RefreshToken: fmt.Sprintf("fz-sr-%d", op),
					TokenType: "Bearer", Expiry: fuzzExpiry(s, clk.Now())}
				ref.secrets = append(ref.secrets, tok.AccessToken, tok.RefreshToken)
				require.NoError(t, tr.SetToken(context.Background(), tok))
				loggedOut = false
			case 9:
				require.NoError(t, tr.Logout(context.Background()))
				loggedOut = true
			default:
				loggedOut = fuzzRoundTripOnce(t, tr, cfg, s, base, answers, ref, loggedOut)
			}
			clk.Advance([]time.Duration{0, 10 * time.Second, time.Minute, time.Hour}[s.pick(4)])
		}
		assert.Empty(t, ref.violations)
	})
}

// fuzzRoundTripOnce sends one request read from s, checks it, and returns
// whether the Transport is now logged out.
func fuzzRoundTripOnce(t *testing.T, tr *bearer.Transport, cfg bearer.Config, s *fuzzScript, base *fakeBase, answers *fuzzAnswers, ref *fuzzRefresher, loggedOut bool) bool {
	fr := newFuzzRequest(s)
	may := fr.mayCarry(cfg)
	before := base.count()
	refCalls := ref.calls

	resp, err := tr.RoundTrip(fr.req)

	calls := base.requests()[before:]
	if err != nil {
		assert.Nil(t, resp, "a response with an error")
		for _, secret := range ref.secrets {
			if secret != "" {
				assert.NotContains(t, err.Error(), secret, "the error shows a token")
			}
		}
	} else if assert.NotNil(t, resp) && assert.NotEmpty(t, calls) {
		assert.Same(t, calls[len(calls)-1].resp, resp, "the response returned is the last one the base gave")
		if b, ok := resp.Body.(*fuzzBody); assert.True(t, ok) {
			assert.Zero(t, b.reads.Load(), "the Transport read the body of the response it returned")
		}
		resp.Body.Close()
	}

	assert.LessOrEqual(t, len(calls), 2, "sent more than twice")
	if len(calls) == 2 {
		first := calls[0].resp
		assert.True(t, first != nil && first.StatusCode == http.StatusUnauthorized, "retried after something other than a 401")
		assert.True(t, ourToken(calls[1].auth), "retried without a token")
		assert.NotEqual(t, calls[0].auth, calls[1].auth, "retried with the token that was rejected")
	}
	for _, c := range calls {
		if ourToken(c.auth) {
			assert.True(t, may, "the token went to %s (hop: %v)", c.req.URL, c.req.Response != nil)
		}
		if fr.callerAuth != "" {
			assert.Equal(t, fr.callerAuth, c.auth, "the caller's Authorization was changed")
		} else if fr.skip {
			assert.Empty(t, c.auth, "a token under SkipAuth")
		}
	}
	if !may {
		assert.Len(t, calls, 1, "a request that may not carry the token is sent once, as it is")
		assert.Equal(t, refCalls, ref.calls, "refreshed for a request that may not carry the token")
	}
	if may && loggedOut {
		assert.ErrorIs(t, err, bearer.ErrLoggedOut)
		assert.Empty(t, calls, "sent while logged out")
		assert.Equal(t, refCalls, ref.calls, "refreshed while logged out")
	}
	assert.LessOrEqual(t, ref.calls-refCalls, 4, "refresher calls in one RoundTrip")

	for i, b := range fr.bodies.all() {
		assert.EqualValues(t, 1, b.closes.Load(), "closes of request body %d", i)
	}
	for i, b := range answers.bodies {
		assert.EqualValues(t, 1, b.closes.Load(), "closes of response body %d", i)
	}
	return loggedOut || errors.Is(err, bearer.ErrLoggedOut)
}

// FuzzEndpointDecode feeds random answers of the refresh endpoint to the
// Endpoint refresher, directly and through a Transport whose token has
// expired. A token comes without an error and an error without a token; an
// answer that is not 2xx is an error; a token's fields are the answer's;
// no error shows the tokens that were sent; the Transport agrees with the
// refresher, and logs out exactly when it calls the failure permanent.
func FuzzEndpointDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		status = 100 + int(uint(status)%500)
		cur := &oauth2.Token{AccessToken: "fz-old-access-SECRET", RefreshToken: "fz-old-refresh-SECRET", TokenType: "Bearer",
			Expiry: time.Now().Add(-time.Hour)}
		answer := &fakeBase{respond: func(req *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {contentType}},
				Body: io.NopCloser(bytes.NewReader(body)), Request: req}, nil
		}}
		ep := &bearer.Endpoint{URL: "https://auth.example.com/refresh", HTTPClient: &http.Client{Transport: answer}}

		tok, err := ep.Refresh(context.Background(), cur)
		assert.True(t, (tok == nil) != (err == nil), "token %v, error %v", tok != nil, err)
		if status < 200 || status > 299 {
			assert.Error(t, err, "status %d", status)
		}
		if err != nil {
			assert.NotContains(t, err.Error(), cur.AccessToken)
			assert.NotContains(t, err.Error(), cur.RefreshToken)
		} else {
			checkEndpointToken(t, body, tok)
		}

		var logouts int
		tr, nerr := bearer.New(bearer.Config{Refresher: ep, Store: store.NewMemory(cur), Base: answer,
			OnLogout: func(context.Context, error) { logouts++ }})
		require.NoError(t, nerr)
		bearer.SetRetry(tr, 1, func(int) time.Duration { return 0 })
		got, terr := tr.Token(context.Background())
		assert.Equal(t, err == nil, terr == nil, "the Transport and the refresher disagree: %v / %v", err, terr)
		if terr == nil {
			assert.Equal(t, tok.AccessToken, got.AccessToken)
			return
		}
		re, ok := isRefreshError(terr)
		if assert.True(t, ok, "%v", terr) {
			assert.Equal(t, re.Permanent, errors.Is(terr, bearer.ErrLoggedOut), "permanent, yet not logged out (or the reverse)")
			assert.Equal(t, re.Permanent, logouts == 1, "OnLogout calls: %d", logouts)
		}
		assert.NotContains(t, terr.Error(), cur.RefreshToken)
	})
}

// checkEndpointToken checks a token the Endpoint refresher accepted
// against the answer it came from.
func checkEndpointToken(t *testing.T, body []byte, tok *oauth2.Token) {
	var raw map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if !assert.NoError(t, d.Decode(&raw), "a token from an answer that is not JSON") {
		return
	}
	assert.NotEmpty(t, tok.AccessToken)
	assert.Equal(t, raw["accessToken"], tok.AccessToken)
	if typ, ok := raw["tokenType"].(string); ok {
		assert.Equal(t, typ, tok.TokenType)
	} else {
		assert.Equal(t, "Bearer", tok.Type())
	}
	if rt, ok := raw["refreshToken"].(string); ok {
		assert.Equal(t, rt, tok.RefreshToken)
	} else {
		assert.Empty(t, tok.RefreshToken, "a refresh token that the answer did not hold")
	}
	if !tok.Expiry.IsZero() {
		assert.True(t, tok.Expiry.After(time.Now().Add(-time.Minute)), "an expiry in the past: %v", tok.Expiry)
	}
}

// FuzzRedirectScope is a differential test of where the token goes on
// redirects, with net/http as the oracle. A request to first is answered
// with redirects to each line of hops in turn, then a 200, by the package's
// fakeBase, and followed by a real http.Client twice: once with a
// caller-set Authorization header and no Transport (what net/http keeps of
// it on each hop is the oracle), once through a Transport with no Hosts.
// The Transport never attaches the token to a request where net/http
// dropped the caller's header, never to a redirect hop whose chain the
// base did not record (Response.Request unset), never over plain http to a
// host that is not loopback unless AllowHTTP, and never over another
// scheme. Hosts, ports, IPv4 and IPv6 literals with zones, trailing dots,
// mixed case, userinfo and relative locations come from the seeds and the
// fuzzer's mutations of them.
func FuzzRedirectScope(f *testing.F) {
	for _, seed := range redirectSeeds {
		f.Add(seed.first, seed.hops, seed.code, seed.setRequest, seed.allowHTTP)
	}
	f.Fuzz(func(t *testing.T, first, hops string, code uint8, setRequest, allowHTTP bool) {
		if _, err := http.NewRequest(http.MethodGet, first, nil); err != nil {
			return
		}

		oracle := &fakeBase{respond: redirectScript(hops, code, setRequest)}
		req, _ := http.NewRequest(http.MethodGet, first, nil)
		req.Header.Set("Authorization", callerAuth)
		if resp, err := (&http.Client{Transport: oracle}).Do(req); err == nil {
			resp.Body.Close()
		}

		base := &fakeBase{respond: redirectScript(hops, code, setRequest)}
		tr, err := bearer.New(bearer.Config{Refresher: &countingRefresher{}, Base: base, AllowHTTP: allowHTTP,
			Store: store.NewMemory(&oauth2.Token{AccessToken: "fz-access", TokenType: "Bearer"})})
		require.NoError(t, err)
		req, _ = http.NewRequest(http.MethodGet, first, nil)
		if resp, err := tr.Client().Do(req); err == nil {
			resp.Body.Close()
		}

		want, got := oracle.requests(), base.requests()
		require.Equal(t, len(want), len(got), "the two clients followed different chains")
		for i, g := range got {
			require.Equal(t, want[i].req.URL.String(), g.req.URL.String(), "hop %d", i)
			if g.auth != "Bearer fz-access" {
				continue
			}
			u := g.req.URL
			assert.Equal(t, callerAuth, want[i].auth, "hop %d to %s: the token went where net/http drops a caller's Authorization", i, u)
			assert.True(t, i == 0 || setRequest, "hop %d to %s: the token on a chain the base did not record", i, u)
			switch u.Scheme {
			case "https":
			case "http":
				assert.True(t, allowHTTP || isLoopbackHost(u.Hostname()), "hop %d: the token over plain http to %s", i, u)
			default:
				t.Errorf("hop %d: the token over %s", i, u)
			}
		}
	})
}

// FuzzSecretEcho is TestSecretsNeverEchoed (redact_test.go) with a
// fuzzed secret: the refresh token, the access token, the client secret or
// the API key (which picks) is the fuzzed string, framed by markers so
// that any trace of it is unmistakable, and an echoing token endpoint of
// the given shape answers one of the package's refreshers (kind). No form
// of any secret and nothing of the raw answer reaches an error of the
// chain, its %+v, OnLogout's error or a log record.
func FuzzSecretEcho(f *testing.F) {
	for i, s := range []string{"a+b/c=d", `"quoted\"`, "<script>&amp;", "é ü 漢字", "%41%2B", "with space",
		"line\nbreak\r", "tab\tnul\x00", "\u2028\u2029", `back\slash`, "[brackets]", "=", "++//==", "'single'"} {
		f.Add(s, uint8(i), uint8(i), uint8(i))
	}
	f.Fuzz(func(t *testing.T, secret string, which, kind, shape uint8) {
		if !utf8.ValidString(secret) || strings.Contains(secret, "redacted") {
			return // a token is text; "[redacted]" is what replaces one
		}
		secret = "zq" + secret + "Qz"
		s := echoSecrets{access: "at_fixed-access", refresh: "rt_fixed-refresh", client: "cs_fixed-client", apiKey: "ak_fixed-key"}
		*[]*string{&s.access, &s.refresh, &s.client, &s.apiKey}[int(which)%4] = secret
		k := echoRefreshers[int(kind)%len(echoRefreshers)]
		checkEcho(t, k.make(s), echoShapes[int(shape)%len(echoShapes)], s)
	})
}
