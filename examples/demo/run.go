package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/seamlessauth/bearer"
)

// runBearer drives a bearer Transport through the scenario, then revokes
// the refresh token and watches the Transport log out while the workers
// keep sending.
func runBearer(o options, d *display) *result {
	s := newScenario(o)
	defer s.close()

	var retries, logouts, refreshes atomic.Int64
	var loggedOutAt atomic.Int64 // unix nanos of the first OnLogout
	tr, err := bearer.New(bearer.Config{
		// The same axios-style POST /refresh that the axios port calls.
		Refresher: &bearer.Endpoint{URL: s.srv.RefreshURL},
		Base:      s.base,
		// Refresh when the token expires, not before: each token lives its
		// whole life, so that every expiry shows. With the default leeway
		// the Transport refreshes a little before expiry instead.
		Leeway: -1,
		OnRefresh: func(_ context.Context, ev bearer.RefreshEvent) {
			if ev.Err != nil {
				d.event("refresh failed: %v", ev.Err)
				return
			}
			now := time.Now()
			expired := s.tl.replaced(now.Add(-ev.Duration), ev.Expiry, now)
			d.event("refresh #%d: %s; %v", refreshes.Add(1), why(ev.Reason, expired), ev.Duration.Round(time.Millisecond))
		},
		OnRetry: func(req *http.Request) {
			markRetried(req.Context())
			retries.Add(1)
		},
		OnLogout: func(_ context.Context, err error) {
			if logouts.Add(1) == 1 {
				loggedOutAt.Store(time.Now().UnixNano())
			}
			d.event("OnLogout: %v", err)
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	defer tr.CloseIdleConnections()

	ctx := context.Background()
	born := time.Now()
	tok := s.srv.Issue() // the user logs in
	if err := tr.SetToken(ctx, tok); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	s.tl.start(born, tok.Expiry)
	d.printf("%d workers for %v against %s; access tokens live %v, refresh tokens rotate, reuse ends the session\n",
		o.workers, o.duration, s.srv.URL, o.ttl)

	start := time.Now()
	client := tr.Client()
	t := s.run(o, d, client, never)
	res := newResult("bearer.Transport", s, t, time.Since(start), retries.Load(), logouts.Load())

	res.logout = logOut(o, d, s, client, &logouts, &loggedOutAt)
	return res
}

// logOut revokes the refresh token, so that the session is over, and keeps
// the workers sending until half a second after the logout (3s at most).
func logOut(o options, d *display, s *scenario, c *http.Client, logouts, loggedOutAt *atomic.Int64) *logoutPhase {
	before := s.srv.Stats()
	d.event("server: the refresh token is revoked; the session is over")
	s.srv.RevokeRefreshTokens()
	stop := func() bool {
		at := loggedOutAt.Load()
		return at != 0 && time.Since(time.Unix(0, at)) > 500*time.Millisecond
	}
	t := new(tally)
	d.startProgress(func() string {
		return fmt.Sprintf("after the revocation: %s requests, %s failed fast with ErrLoggedOut, logouts %d",
			count(t.requests.Load()), count(t.loggedOut.Load()), logouts.Load())
	})
	drive(c, s.srv.APIURL, o.workers, 1000, time.Now().Add(3*time.Second), stop, t)
	d.stopProgress()
	return &logoutPhase{
		requests:     t.requests.Load(),
		loggedOut:    t.loggedOut.Load(),
		other:        t.failed.Load(),
		firstErr:     t.first(),
		refreshCalls: s.srv.Stats().TokenRequests - before.TokenRequests,
		logouts:      logouts.Load(),
	}
}

// why says what started a refresh, and whether the token it replaced had
// expired (else it was revoked).
func why(r bearer.Reason, expired bool) string {
	switch {
	case r == bearer.ReasonExpiring:
		return "the token expired"
	case r == bearer.ReasonRejected && expired:
		return "the token expired (a 401 told first)"
	case r == bearer.ReasonRejected:
		return "the API answered 401 to a token that had not expired"
	}
	return r.String()
}
