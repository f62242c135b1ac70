package bearer_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/store"
)

// recorder remembers every token that passes through a refresher, so the
// test can look for them in everything the library printed.
type recorder struct {
	mu     sync.Mutex
	tokens []string
	next   bearer.Refresher
}

func (r *recorder) add(tok *oauth2.Token) {
	if tok == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokens = append(r.tokens, tok.AccessToken, tok.RefreshToken)
}

func (r *recorder) Refresh(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
	r.add(cur)
	tok, err := r.next.Refresh(ctx, cur)
	r.add(tok)
	return tok, err
}

// TestNoTokenInOutput drives a Transport through refreshes, transient
// failures and a logout with a debug-level text logger, and checks that no
// token appears in a log line, an error or the %v of the library's values.
func TestNoTokenInOutput(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	var out bytes.Buffer
	var outMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&out, &outMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	print := func(v ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		for _, x := range v {
			fmt.Fprintf(&out, "%v %+v %#v\n", x, x, x)
		}
	}
	rec := &recorder{next: bearer.OAuth2(cfg)}
	first := srv.Issue()
	rec.add(first)
	clk := newClock()
	tr := newTransport(t, bearer.Config{
		Refresher:      rec,
		Base:           loopbackBase(t, 4),
		Logger:         logger,
		RefreshTimeout: time.Second,
		OnRefresh:      func(_ context.Context, ev bearer.RefreshEvent) { print(ev) },
		OnLogout:       func(_ context.Context, err error) { print(err) },
	}, first)
	bearer.SetClock(tr, clk.Now)
	get := func() {
		resp, err := tr.Client().Get(srv.APIURL + "/x")
		if err != nil {
			print(err)
			return
		}
		resp.Body.Close()
	}

	get()                      // load
	srv.RevokeAccessTokens()   // reactive refresh
	get()                      //
	clk.Advance(2 * time.Hour) // proactive refresh of an expired token
	get()                      //
	srv.FailToken(-1, bearertest.ServerError(503))
	srv.RevokeAccessTokens()
	get() // transient failure
	srv.ClearFaults()
	srv.FailToken(-1, bearertest.Fault{Status: 400, Body: `{"error":"invalid_grant","error_description":"bad"}`, Header: http.Header{"Content-Type": {"application/json"}}})
	get() // logout
	get() // logged out
	srv.ClearFaults()
	print(tr)

	rec.mu.Lock()
	tokens := append([]string(nil), rec.tokens...)
	rec.mu.Unlock()
	require.GreaterOrEqual(t, len(tokens), 6, "the scenario saw several tokens")
	text := out.String()
	require.Contains(t, text, "token refreshed", "the logger was used")
	require.Contains(t, text, "logged out")
	for _, tok := range tokens {
		if tok != "" {
			assert.NotContains(t, text, tok)
		}
	}
	assert.NotContains(t, text, bearertest.AccessPrefix)
	assert.NotContains(t, text, bearertest.RefreshPrefix)
	if t.Failed() {
		t.Log(strings.ReplaceAll(text, "\n", "\n\t"))
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestClientSecretNotInError: some servers echo the client secret in
// error_description; the refresh error must not repeat it.
func TestClientSecretNotInError(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{})
	cfg.ClientSecret = "wrong-client-secret"
	tr := newTransport(t, bearer.Config{Refresher: bearer.OAuth2(cfg), Base: loopbackBase(t, 2)}, srv.Issue())
	srv.RevokeAccessTokens()
	srv.FailToken(1, bearertest.Fault{
		Status: 401,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   `{"error":"invalid_client","error_description":"Invalid client secret: wrong-client-secret"}`,
	})
	_, err := tr.Client().Get(srv.APIURL + "/x")
	require.Error(t, err)
	assert.ErrorIs(t, err, bearer.ErrLoggedOut)
	assert.Contains(t, err.Error(), "invalid_client")
	assert.NotContains(t, err.Error(), "wrong-client-secret")
	assert.Equal(t, 1, strings.Count(err.Error(), "bearer: "), "one prefix: %s", err)
}

// echoSecrets are the secrets of one refresh: the tokens it presents, the
// client secret and an API key.
type echoSecrets struct{ access, refresh, client, apiKey string }

// echoForms are the encodings in which a server may send a string back:
// raw, URL-encoded as a query and as a path (upper- and lower-case hex),
// JSON-escaped by Go (HTML-safe or not), with escaped slashes (PHP), and
// with every non-ASCII rune escaped (Python's ensure_ascii). Written apart
// from errors.go, which must remove them all.
func echoForms(s string) []string {
	lower := func(e string) string {
		var b strings.Builder
		for i := 0; i < len(e); i++ {
			if e[i] == '%' && i+2 < len(e) {
				b.WriteString("%" + strings.ToLower(e[i+1:i+3]))
				i += 2
				continue
			}
			b.WriteByte(e[i])
		}
		return b.String()
	}
	jsonEsc := func(s string, html bool) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		enc.Encode(s)
		return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(b.String()), `"`), `"`)
	}
	ascii := func(s string) string {
		var b strings.Builder
		for _, r := range jsonEsc(s, false) {
			if r < utf8.RuneSelf {
				b.WriteRune(r)
				continue
			}
			for _, u := range utf16.Encode([]rune{r}) {
				fmt.Fprintf(&b, `\u%04x`, u)
			}
		}
		return b.String()
	}
	q, p := url.QueryEscape(s), url.PathEscape(s)
	forms := []string{s, q, p, lower(q), lower(p), jsonEsc(s, true), jsonEsc(s, false),
		strings.ReplaceAll(jsonEsc(s, false), "/", `\/`), ascii(s), strings.ReplaceAll(ascii(s), "/", `\/`)}
	slices.Sort(forms)
	return slices.Compact(forms)
}

// echoShapes are the answers of an echoing token endpoint; each carries
// everything it was sent, in every form, in its body, its error description,
// its headers and its status line.
var echoShapes = []string{
	"400 invalid_grant", "401 invalid_client", "500 html", "200 secret as the error code",
	"400 form-encoded", "503 Retry-After", "307 then a failing hop", "200 not a token",
	"200 not JSON, Content-Type echoed",
}

// rawMarker is in every echoed body and nowhere else: it must never reach
// an error.
const rawMarker = "RAW-ANSWER-BODY"

// echoRefreshers are the package's refreshers, each built for an echoing
// token endpoint at echoURL.
var echoRefreshers = []struct {
	name string
	make func(s echoSecrets) bearer.Refresher
}{
	{"OAuth2 in params", func(s echoSecrets) bearer.Refresher {
		return bearer.OAuth2(&oauth2.Config{ClientID: "client-id", ClientSecret: s.client,
			Endpoint: oauth2.Endpoint{TokenURL: echoURL, AuthStyle: oauth2.AuthStyleInParams}})
	}},
	{"OAuth2 in header", func(s echoSecrets) bearer.Refresher {
		return bearer.OAuth2(&oauth2.Config{ClientID: "client-id", ClientSecret: s.client,
			Endpoint: oauth2.Endpoint{TokenURL: echoURL, AuthStyle: oauth2.AuthStyleInHeader}})
	}},
	{"FromTokenSource in params", func(s echoSecrets) bearer.Refresher {
		cc := &clientcredentials.Config{ClientID: "client-id", ClientSecret: s.client, TokenURL: echoURL, AuthStyle: oauth2.AuthStyleInParams}
		return bearer.FromTokenSource(cc.TokenSource)
	}},
	{"FromTokenSource in header", func(s echoSecrets) bearer.Refresher {
		cc := &clientcredentials.Config{ClientID: "client-id", ClientSecret: s.client, TokenURL: echoURL, AuthStyle: oauth2.AuthStyleInHeader}
		return bearer.FromTokenSource(cc.TokenSource)
	}},
	{"Endpoint with an API key", func(s echoSecrets) bearer.Refresher {
		return &bearer.Endpoint{URL: echoURL, Header: http.Header{"X-Api-Key": {s.apiKey}}}
	}},
}

const echoURL = "https://auth.example.com/token"

// newEchoBase answers token requests in the given shape, echoing what each
// request presented (refresh token, client secret, Basic credentials, API
// key) and also the access token, which a refresh does not send.
func newEchoBase(shape string, access string) *fakeBase {
	var base *fakeBase
	base = &fakeBase{respond: func(req *http.Request) (*http.Response, error) {
		seen := base.requests()
		if req.URL.Path != "/token" && req.URL.Path != "/revoke" {
			return nil, fmt.Errorf("connection reset by %s", req.URL.RawQuery)
		}
		var echoed []string
		body := seen[len(seen)-1].body
		if form, err := url.ParseQuery(body); err == nil {
			echoed = append(echoed, form.Get("refresh_token")+form.Get("token"), form.Get("client_secret")) // a refresh sends refresh_token, a revocation token
		}
		var js map[string]string
		if json.Unmarshal([]byte(body), &js) == nil {
			echoed = append(echoed, js["token"])
		}
		if _, pw, ok := req.BasicAuth(); ok {
			pw, _ = url.QueryUnescape(pw)
			echoed = append(echoed, pw, strings.TrimPrefix(req.Header.Get("Authorization"), "Basic "))
		}
		echoed = append(echoed, req.Header.Get("X-Api-Key"), access)
		var all []string
		for _, s := range echoed {
			if s != "" {
				all = append(all, echoForms(s)...)
			}
		}
		text := strings.Join(all, " ")
		first := echoed[0]
		status, _ := strconv.Atoi(shape[:3])
		resp := &http.Response{StatusCode: status, Status: strconv.Itoa(status) + " " + first, Header: http.Header{}, Request: req}
		for i, f := range all {
			resp.Header.Add("Set-Cookie", "session="+url.QueryEscape(f))
			resp.Header.Set("X-Echo-"+strconv.Itoa(i), f)
		}
		resp.Header.Set("WWW-Authenticate", `Bearer error="invalid_token", error_description=`+strconv.Quote(text))
		resp.Header.Set("Content-Type", "application/json")
		jsonBody := func(fields map[string]string) string {
			fields["note"] = rawMarker + " " + text
			b, _ := json.Marshal(fields)
			return string(b)
		}
		var out string
		switch shape {
		case "400 invalid_grant":
			out = jsonBody(map[string]string{"error": "invalid_grant", "error_description": "unknown token " + text, "error_uri": "https://auth.example.com/e?t=" + url.QueryEscape(text)})
		case "401 invalid_client":
			out = jsonBody(map[string]string{"error": "invalid_client", "error_description": "bad client secret " + text})
		case "500 html":
			resp.Header.Set("Content-Type", "text/html")
			out = "<html><body>" + rawMarker + " " + text + "</body></html>"
		case "200 secret as the error code":
			out = jsonBody(map[string]string{"error": first, "error_description": text})
		case "400 form-encoded":
			resp.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			out = url.Values{"error": {"invalid_request"}, "error_description": {text}, "note": {rawMarker + " " + text}}.Encode()
		case "503 Retry-After":
			resp.Header.Set("Retry-After", first)
			out = jsonBody(map[string]string{"error": "temporarily_unavailable", "error_description": text})
		case "307 then a failing hop":
			resp.Header.Set("Location", "/hop?t="+url.QueryEscape(first))
			out = jsonBody(map[string]string{})
		case "200 not a token":
			out = jsonBody(map[string]string{"access_token": "", "accessToken": ""})
		case "200 not JSON, Content-Type echoed":
			resp.Header.Set("Content-Type", "application/"+first)
			out = "<" + rawMarker + " " + text
		}
		resp.Body = io.NopCloser(strings.NewReader(out))
		resp.ContentLength = int64(len(out))
		return resp, nil
	}}
	return base
}

// errorChain is err and every error it wraps, through Unwrap() error and
// Unwrap() []error.
func errorChain(err error) []error {
	if err == nil {
		return nil
	}
	out := []error{err}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		out = append(out, errorChain(u.Unwrap())...)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, errorChain(e)...)
		}
	}
	return out
}

// assertNothingLeaks checks err and every error in its chain: no secret
// in any form in its text or %+v, no raw body, and no *oauth2.RetrieveError
// that keeps the body, the answer's body or cookies, or the token request.
func assertNothingLeaks(t *testing.T, what string, err error, secrets []string) {
	t.Helper()
	require.Error(t, err, what)
	for i, e := range errorChain(err) {
		texts := []string{e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%v", e)}
		var re *oauth2.RetrieveError
		if r, ok := e.(*oauth2.RetrieveError); ok {
			re = r
			texts = append(texts, fmt.Sprintf("%+v", *r))
			if r.Response != nil {
				texts = append(texts, fmt.Sprintf("%+v", *r.Response))
			}
		}
		for _, text := range texts {
			assert.NotContains(t, text, rawMarker, "%s: error %d of the chain (%T) shows the raw answer", what, i, e)
			for _, s := range secrets {
				for _, f := range echoForms(s) {
					if !assert.NotContains(t, text, f, "%s: error %d of the chain (%T) shows a secret", what, i, e) {
						return
					}
				}
			}
		}
		if re != nil {
			assert.Empty(t, re.Body, "%s: RetrieveError.Body is kept", what)
			if resp := re.Response; resp != nil {
				assert.Nil(t, resp.Request, "%s: the answer keeps the token request", what)
				assert.Empty(t, resp.Header.Values("Set-Cookie"), "%s: the answer keeps its cookies", what)
				assert.True(t, resp.Body == nil || resp.Body == http.NoBody, "%s: the answer keeps a readable body", what)
			}
		}
	}
}

// TestSecretsNeverEchoed has a token endpoint echo everything each
// refresher presents (refresh token, client secret, Basic credentials, API
// key) and the access token, in every encoding, in its body, its error
// description, its headers and its status line, in every shape of answer.
// No form of a secret and nothing of the raw body reaches the refresher's
// error, the Transport's error, OnLogout's error or a log record.
func TestSecretsNeverEchoed(t *testing.T) {
	secrets := echoSecrets{
		access:  "at_Acc+ess/tok=en<&>",
		refresh: `rt_Ref+resh/tok=en"\é`,
		client:  "cs_Cli+ent:sec/ret=%&",
		apiKey:  "ak_Api+Key/val=ue",
	}
	for _, kind := range echoRefreshers {
		for _, shape := range echoShapes {
			t.Run(kind.name+"/"+shape, func(t *testing.T) {
				checkEcho(t, kind.make(secrets), shape, secrets)
			})
		}
	}
}

// checkEcho runs one refresh against an echoing endpoint, directly and
// through a Transport, and checks every error and log record it produced.
func checkEcho(t *testing.T, ref bearer.Refresher, shape string, s echoSecrets) {
	all := []string{s.access, s.refresh, s.client, s.apiKey,
		base64.StdEncoding.EncodeToString([]byte("client-id:" + url.QueryEscape(s.client)))}
	cur := &oauth2.Token{AccessToken: s.access, RefreshToken: s.refresh, TokenType: "Bearer", Expiry: time.Now().Add(-time.Minute)}

	base := newEchoBase(shape, s.access)
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: base})
	_, err := ref.Refresh(ctx, cur)
	assertNothingLeaks(t, "the refresher's error", err, all)

	var logs bytes.Buffer
	var mu sync.Mutex
	w := lockedWriter{&logs, &mu}
	logger := slog.New(multiHandler{
		slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}),
	})
	var logoutErr error
	tr, nerr := bearer.New(bearer.Config{Refresher: ref, Store: store.NewMemory(cur), Base: base, Logger: logger,
		OnLogout: func(_ context.Context, err error) { logoutErr = err }})
	require.NoError(t, nerr)
	bearer.SetRetry(tr, 1, nil)
	_, err = tr.Token(context.Background())
	assertNothingLeaks(t, "the Transport's error", err, all)
	if logoutErr != nil {
		assertNothingLeaks(t, "OnLogout's error", logoutErr, all)
	}
	mu.Lock()
	text := logs.String()
	mu.Unlock()
	require.Contains(t, text, "refresh failed")
	assert.NotContains(t, text, rawMarker, "a log record shows the raw answer")
	for _, sec := range all {
		for _, f := range echoForms(sec) {
			if !assert.NotContains(t, text, f, "a log record shows a secret") {
				t.Log(text)
				return
			}
		}
	}
}

// multiHandler sends each record to every handler.
type multiHandler []slog.Handler

func (m multiHandler) Enabled(ctx context.Context, l slog.Level) bool { return true }
func (m multiHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range m {
		h.Handle(ctx, r.Clone())
	}
	return nil
}
func (m multiHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(multiHandler, len(m))
	for i, h := range m {
		out[i] = h.WithAttrs(as)
	}
	return out
}
func (m multiHandler) WithGroup(name string) slog.Handler {
	out := make(multiHandler, len(m))
	for i, h := range m {
		out[i] = h.WithGroup(name)
	}
	return out
}
