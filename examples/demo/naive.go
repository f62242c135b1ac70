package main

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/seamlessauth/bearer/internal/axios"
)

// runNaive drives the port of the axios refresh interceptor (internal/axios)
// through the same scenario as the bearer run. Once it has logged out, its
// workers stop: the app is on its login page.
func runNaive(o options, d *display) *result {
	s := newScenario(o)
	defer s.close()

	var retries, logouts atomic.Int64
	var endedAt time.Duration
	start := time.Now()
	c := &axios.Interceptor{
		Base:          s.base,
		RefreshClient: &http.Client{Transport: s.base},
		RefreshURL:    s.srv.RefreshURL,
		OnRefresh:     func(asked, expiry time.Time) { s.tl.replaced(asked, expiry, time.Now()) },
		OnRetry: func(req *http.Request) {
			markRetried(req.Context())
			retries.Add(1)
		},
		OnLogout: func(err error) {
			if logouts.Add(1) == 1 {
				endedAt = time.Since(start)
				d.event("logout(): %v; the user is sent to the login page", err)
			}
		},
	}
	born := time.Now()
	tok := s.srv.Issue() // the user logs in
	c.Login(tok)
	s.tl.start(born, tok.Expiry)
	d.printf("%d workers for %v against %s; access tokens live %v, refresh tokens rotate, reuse ends the session\n",
		o.workers, o.duration, s.srv.URL, o.ttl)

	t := s.run(o, d, &http.Client{Transport: c}, c.LoggedOut)
	res := newResult("axios interceptor", s, t, time.Since(start), retries.Load(), logouts.Load())
	if res.logouts > 0 {
		res.endedEarly = fmt.Sprintf("logged out after %.1fs", endedAt.Seconds())
	}
	return res
}
