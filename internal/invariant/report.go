package invariant

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// This file holds what a check of a history found, and how it is printed.

// violation is one broken invariant.
type violation struct {
	check string
	msg   string
}

// result is what checking a history found.
type result struct {
	violations []violation
	stats      stats
	w          *world
	m          *model
}

func (r *result) add(check, format string, args ...any) {
	r.violations = append(r.violations, violation{check, fmt.Sprintf(format, args...)})
}

// broke reports whether r has a violation of check.
func (r *result) broke(check string) bool {
	return slices.ContainsFunc(r.violations, func(v violation) bool { return v.check == check })
}

// stats counts what the histories did.
type stats struct {
	histories, steps, requests, sends, calls, refreshes int
	adopted, lost, reuses, logouts, logins              int
	spent                                               int // spent refresh tokens presented after a failed save: a known defect (saveFailed)
}

func (s *stats) add(o stats) {
	s.histories += o.histories
	s.steps += o.steps
	s.requests += o.requests
	s.sends += o.sends
	s.calls += o.calls
	s.refreshes += o.refreshes
	s.adopted += o.adopted
	s.lost += o.lost
	s.reuses += o.reuses
	s.logouts += o.logouts
	s.logins += o.logins
	s.spent += o.spent
}

func (s stats) String() string {
	return fmt.Sprintf("%d steps, %d requests (%d sends), %d token requests (%d refreshed), %d adoptions, %d answers lost, "+
		"%d reuse detections, %d OnLogout calls, %d logins; %d spent refresh tokens presented after a failed save (known defect)",
		s.steps, s.requests, s.sends, s.calls, s.refreshes, s.adopted, s.lost, s.reuses, s.logouts, s.logins, s.spent)
}

// describe prints the violations and the trace of the history.
func (r *result) describe(h *history) string {
	var b strings.Builder
	for i, v := range r.violations {
		if i == 12 {
			fmt.Fprintf(&b, "  ... and %d more\n", len(r.violations)-i)
			break
		}
		fmt.Fprintf(&b, "  [%s] %s\n", v.check, v.msg)
	}
	if r.m != nil {
		b.WriteString("trace (seq: event; tokens as L<lineage>.<refreshes>):\n")
		b.WriteString(r.w.trace(r.m))
	}
	return b.String()
}

// trace lists what happened, in order.
func (w *world) trace(m *model) string {
	type line struct {
		seq uint64
		s   string
	}
	var lines []line
	add := func(seq uint64, format string, args ...any) {
		lines = append(lines, line{seq, fmt.Sprintf(format, args...)})
	}
	for _, c := range w.rec.calls {
		out := fmt.Sprintf("%d %s %s", c.status, c.code, c.desc)
		switch {
		case c.lost:
			out = fmt.Sprintf("200 %s, lost", m.name(c.newRT, true))
		case c.status == http.StatusOK:
			out = "200 " + m.name(c.newRT, true)
		case !c.delivered:
			out = "no answer"
		}
		add(c.start, "T%d token request with %s → %s (until %d)", c.tr, m.name(c.rt, true), strings.TrimSpace(out), c.end)
	}
	for _, s := range w.rec.saves {
		what := s.method
		if s.tok != nil {
			what += " " + m.name(s.tok.AccessToken, false)
		}
		add(s.start, "T%d store %s → wrote=%v err=%v (until %d)", s.tr, what, s.wrote, s.err, s.end)
	}
	for _, u := range w.rec.users {
		what := u.what
		if u.tok != nil {
			what += " " + m.name(u.tok.AccessToken, false)
		}
		add(u.start, "T%d %s → %v (until %d)", u.tr, what, u.err, u.end)
	}
	for _, o := range w.rec.logouts {
		add(o.start, "T%d OnLogout(%v)", o.tr, o.err)
	}
	for _, r := range w.rec.revokes {
		if r.rt != "" {
			add(r.start, "server revokes lineage of %s", m.name(r.rt, true))
		} else {
			add(r.start, "server revokes every %s", map[string]string{"access": "access token", "lineages": "lineage"}[r.what])
		}
	}
	sendsOf := map[uint64][]string{}
	for _, s := range w.rec.sends {
		tok := "no token"
		if s.auth != "" {
			tok = m.name(strings.TrimPrefix(s.auth, "Bearer "), false)
		}
		sendsOf[s.req] = append(sendsOf[s.req], fmt.Sprintf("%s→%d", tok, s.status))
	}
	for _, r := range w.rec.requests {
		out := fmt.Sprint(r.status)
		if r.err != nil {
			out = r.err.Error()
		}
		if r.token != nil {
			out = "token " + m.name(r.token.AccessToken, false)
		}
		final := ""
		if r.final {
			final = " (final)"
		}
		add(r.start, "T%d request #%d %s%s [%s] ⇒ %s (until %d, %v)", r.tr, r.id, reqNames[r.kind], final, strings.Join(sendsOf[r.id], ", "), out, r.end, r.took.Round(time.Millisecond))
	}
	for _, l := range w.rec.locks {
		add(l.seq, "T%d store Lock taken after %v", l.tr, l.wait.Round(time.Millisecond))
	}
	slices.SortStableFunc(lines, func(a, b line) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "  %5d  %s\n", l.seq, l.s)
	}
	return b.String()
}
