package main

import (
	"fmt"
	"time"
)

// result is the outcome of one run, as the summary prints it.
type result struct {
	name       string
	elapsed    time.Duration
	endedEarly string // why the workers stopped before the end, if they did

	requests, ok, failed int64
	firstErr             string
	unauthorized         int64 // 401s the API sent
	absorbed             int64 // requests that met a 401, were retried and succeeded
	retries              int64 // requests sent again after a refresh

	refreshCalls int64 // requests to the refresh endpoint (server)
	refreshes    int64 // refreshes the server granted
	expiries     int   // tokens that expired in use (timeline)
	revocations  int   // server-side revocations of the access tokens
	reuse        int64 // reuse detections (server)
	logouts      int64 // calls to the logout hook during the run

	logout *logoutPhase // after the refresh token is revoked (bearer only)
}

// logoutPhase is what happens after the server revokes the refresh token.
type logoutPhase struct {
	requests     int64
	loggedOut    int64 // requests that failed with ErrLoggedOut, as they should
	other        int64 // requests that ended any other way
	firstErr     string
	refreshCalls int64 // requests to the refresh endpoint (server)
	logouts      int64 // calls to OnLogout
}

// newResult fills in what the workers and the server saw in a run.
func newResult(name string, s *scenario, t *tally, elapsed time.Duration, retries, logouts int64) *result {
	st := s.srv.Stats()
	r := &result{
		name:         name,
		elapsed:      elapsed,
		requests:     t.requests.Load(),
		ok:           t.ok.Load(),
		failed:       t.failed.Load() + t.loggedOut.Load(),
		firstErr:     t.first(),
		unauthorized: st.APIUnauthorized,
		absorbed:     t.absorbed.Load(),
		retries:      retries,
		refreshCalls: st.TokenRequests,
		refreshes:    st.Refreshes,
		expiries:     s.tl.count(time.Now()),
		reuse:        st.ReuseDetections,
		logouts:      logouts,
	}
	if s.revoked.Load() {
		r.revocations = 1
	}
	return r
}

// problems lists what the bearer run got wrong; nothing if it held up.
func (r *result) problems() []string {
	var p []string
	if r.failed > 0 {
		p = append(p, fmt.Sprintf("%d of %d requests failed; the first: %s", r.failed, r.requests, r.firstErr))
	}
	if r.refreshes > int64(r.expiries+r.revocations) {
		p = append(p, fmt.Sprintf("%d refreshes for %d expiries and %d revocations", r.refreshes, r.expiries, r.revocations))
	}
	if r.reuse > 0 {
		p = append(p, fmt.Sprintf("the server detected refresh token reuse %d times", r.reuse))
	}
	if r.logouts > 0 {
		p = append(p, fmt.Sprintf("the logout hook was called %d times during the run", r.logouts))
	}
	if l := r.logout; l != nil {
		if l.logouts != 1 {
			p = append(p, fmt.Sprintf("after the refresh token was revoked, the logout hook was called %d times, not once", l.logouts))
		}
		if l.other > 0 {
			p = append(p, fmt.Sprintf("after the refresh token was revoked, %d requests did not fail with ErrLoggedOut; the first: %s", l.other, l.firstErr))
		}
		if l.refreshCalls > 1 {
			p = append(p, fmt.Sprintf("the dead refresh token was tried %d times, not once", l.refreshCalls))
		}
	}
	return p
}
