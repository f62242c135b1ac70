package invariant

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
)

// This file holds what each Transport of a world is built on: its base
// RoundTripper, which records what reaches the API and the token endpoint,
// its Refresher, its hooks and its log handler, each of which a fault may
// make panic.

// holder is one Transport of the world, with its hooks.
type holder struct {
	w  *world
	i  int
	tr *bearer.Transport
}

// base is one Transport's base RoundTripper: it records every request that
// reaches the API and every token request, and loses token answers when
// told to.
type base struct {
	w *world
	i int
}

func (b *base) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/token" {
		return b.token(req)
	}
	s := &sendRec{req: requestOf(req.Context()), tr: b.i, auth: req.Header.Get("Authorization"),
		allowed: req.URL.Host == b.w.apiHost, start: b.w.rec.tick()}
	resp, err := b.w.loop.RoundTrip(req)
	s.end = b.w.rec.tick()
	if err == nil {
		s.status = resp.StatusCode
	}
	b.w.rec.add(func() { b.w.rec.sends = append(b.w.rec.sends, s) })
	return resp, err
}

// errLost is the error of a token answer that the history dropped.
var errLost = errors.New("invariant: the token answer was lost on its way back")

// token sends a token request and records what was presented and what came
// back.
func (b *base) token(req *http.Request) (*http.Response, error) {
	var form []byte
	if req.Body != nil {
		form, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	values, _ := url.ParseQuery(string(form))
	c := &callRec{tr: b.i, rt: values.Get("refresh_token")}
	defer func() {
		c.end = b.w.rec.tick()
		b.w.rec.add(func() { b.w.rec.calls = append(b.w.rec.calls, c) })
	}()
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(form))
	out.ContentLength = int64(len(form))
	c.start = b.w.rec.tick()
	resp, err := b.w.loop.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	c.status = resp.StatusCode
	var answer struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		Error        string `json:"error"`
		Description  string `json:"error_description"`
	}
	if json.Unmarshal(body, &answer) == nil {
		c.at, c.newRT, c.code, c.desc = answer.AccessToken, answer.RefreshToken, answer.Error, answer.Description
	}
	if c.status == http.StatusOK && c.newRT != "" {
		b.w.lastRT.Store("rt", c.newRT)
	}
	if c.rotated() && take(&b.w.flt.lose) {
		c.lost = true
		return nil, errLost
	}
	c.delivered = true
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// CloseIdleConnections closes the connections of the world's transport.
func (b *base) CloseIdleConnections() { b.w.loop.CloseIdleConnections() }

// refresh is the Transport's Refresher: bearer.OAuth2 against the server,
// with the expiry read by the Transport's own clock, as a client reads
// expires_in. It panics when told to, naming the refresh token it holds.
func (hd *holder) refresh(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
	if take(&hd.w.flt.refresher) {
		rt := ""
		if cur != nil {
			rt = cur.RefreshToken
		}
		panic("invariant: injected Refresher panic holding " + rt)
	}
	tok, err := hd.w.inner.Refresh(ctx, cur)
	if err != nil {
		return nil, err
	}
	if tok.ExpiresIn > 0 {
		tok.Expiry = hd.w.clk.of(hd.i).Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	return tok, nil
}

func (hd *holder) onLogout(ctx context.Context, err error) {
	r := &hookRec{tr: hd.i, start: hd.w.rec.tick(), err: err}
	hd.w.rec.leak("OnLogout error", err.Error())
	r.end = hd.w.rec.tick()
	hd.w.rec.add(func() { hd.w.rec.logouts = append(hd.w.rec.logouts, r) })
	if hd.w.flt.hook("OnLogout") {
		panic("invariant: injected panic in OnLogout")
	}
}

func (hd *holder) onRefreshStart(ctx context.Context, reason bearer.Reason) context.Context {
	hd.w.flights.start()
	if hd.w.flt.hook("OnRefreshStart") {
		panic("invariant: injected panic in OnRefreshStart")
	}
	return ctx
}

func (hd *holder) onRefresh(ctx context.Context, ev bearer.RefreshEvent) {
	hd.w.rec.add(func() { hd.w.rec.events = append(hd.w.rec.events, ev) })
	if ev.Err != nil {
		hd.w.rec.leak("RefreshEvent error", ev.Err.Error())
	}
	hd.w.flights.end()
	if hd.w.flt.hook("OnRefresh") {
		panic("invariant: injected panic in OnRefresh")
	}
}

func (hd *holder) onRetry(*http.Request) {
	if hd.w.flt.hook("OnRetry") {
		panic("invariant: injected panic in OnRetry")
	}
}

// logHandler reads every log record for tokens, and panics when told to.
type logHandler struct{ hd *holder }

func (logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h logHandler) Handle(_ context.Context, r slog.Record) error {
	if h.hd.w.flt.hook("log handler") {
		panic("invariant: injected panic in the log handler")
	}
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value.Any())
		return true
	})
	h.hd.w.rec.leak("log record", b.String())
	return nil
}

func (h logHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logHandler) WithGroup(string) slog.Handler      { return h }
