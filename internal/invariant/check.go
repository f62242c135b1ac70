package invariant

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/seamlessauth/bearer"
)

// This file checks a history. What must hold, whatever happened:
//
//   - reuse: the server never saw a refresh token presented once its
//     successor had reached a Transport, nor two presentations of one at
//     once; a reuse detection follows an answer that never came back, at
//     most one per such answer, unless the lineage was already dead;
//   - credential: no request carried an empty credential or a token to a
//     host it may not reach; Token never returned an empty access token;
//   - outcome: every request succeeded or failed with a documented error,
//     and one that failed with a logout's error returned after OnLogout;
//   - 401: the caller got a 401 only when one more real refresh could not
//     fix it: a body that cannot be replayed, a retry with a token the
//     Transport refreshed itself, or two sends after the first;
//   - logged-out lineage: no request that a Transport started after it
//     logged out of a lineage (Logout, or OnLogout) carried that lineage;
//   - backwards: no Transport sent a token older than one it had sent
//     before the request started (the lineage only moves forward);
//   - resurrection: after the store was cleared, nothing saved a token of a
//     lineage from before the clear (a logout is not undone);
//   - OnLogout: it ran only for a permanent failure that the token endpoint
//     answered to that Transport or for a store that a logout cleared, and
//     once per login per Transport;
//   - final: once the faults are gone, each Transport serves a request again,
//     with one refresh at most, or says it is logged out;
//   - leak, panic, stuck, goroutines: no token in a log record or an error,
//     no panic reaching a caller, no refresh that never ends, no goroutine
//     left behind.

// check runs every check over the records of w.
func (w *world) check() *result {
	r := &w.rec
	byStart := func(a, b uint64) int {
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	}
	slices.SortFunc(r.calls, func(a, b *callRec) int { return byStart(a.start, b.start) })
	slices.SortFunc(r.users, func(a, b *userRec) int { return byStart(a.start, b.start) })
	slices.SortFunc(r.saves, func(a, b *storeRec) int { return byStart(a.start, b.start) })
	slices.SortFunc(r.sends, func(a, b *sendRec) int { return byStart(a.start, b.start) })
	slices.SortFunc(r.requests, func(a, b *requestRec) int { return byStart(a.start, b.start) })
	slices.SortFunc(r.logouts, func(a, b *hookRec) int { return byStart(a.start, b.start) })
	slices.SortFunc(r.locks, func(a, b lockRec) int { return byStart(a.seq, b.seq) })

	m := w.model()
	res := &result{w: w, m: m}
	w.checkReuse(res, m)
	w.checkRequests(res, m)
	w.checkLoggedOutLineages(res, m)
	w.checkBackwards(res, m)
	w.checkResurrection(res, m)
	w.checkOnLogout(res)
	w.checkFinal(res, m)
	for _, s := range r.leaks {
		res.add("leak", "a token showed in a %s", s)
	}
	for _, s := range r.panics {
		res.add("panic", "a panic reached the caller of %s", s)
	}
	for _, s := range r.stuck {
		res.add("stuck", "%s", s)
	}

	st := &res.stats
	st.histories, st.steps = 1, len(w.h.running())
	st.requests, st.sends, st.calls = len(r.requests), len(r.sends), len(r.calls)
	st.logouts = len(r.logouts)
	st.reuses = int(w.stats.ReuseDetections)
	for _, c := range r.calls {
		if c.lost {
			st.lost++
		}
		if c.delivered && c.rotated() {
			st.refreshes++
		}
	}
	for _, e := range r.events {
		if e.Adopted {
			st.adopted++
		}
	}
	for _, u := range r.users {
		if u.what == "SetToken" && u.err == nil {
			st.logins++
		}
	}
	return res
}

// checkReuse: no refresh token presented after its successor was
// delivered, or twice at once; reuse detections only where an answer was
// lost, or on a lineage already dead.
func (w *world) checkReuse(res *result, m *model) {
	byRT := map[string][]*callRec{}
	for _, c := range w.rec.calls {
		byRT[c.rt] = append(byRT[c.rt], c)
	}
	seen, unanswered := 0, 0
	for _, c := range w.rec.calls {
		p, ok := m.rt[c.rt]
		if !ok {
			res.add("reuse", "T%d presented a refresh token that the server never issued (seq %d)", c.tr, c.start)
			continue
		}
		dead := func() bool { return p.l.dead < c.start }
		earlier := byRT[c.rt][:slices.Index(byRT[c.rt], c)]
		for _, e := range earlier {
			switch {
			case dead():
			case e.end > c.start:
				res.add("reuse", "T%d and T%d presented %s at once (seq %d and %d): two refreshes of one token",
					e.tr, c.tr, m.name(c.rt, true), e.start, c.start)
			case e.delivered && e.rotated() && w.saveFailed(e, c):
				res.stats.spent++
			case e.delivered && e.rotated():
				res.add("reuse", "T%d presented %s (seq %d) after T%d had received its successor %s (seq %d): the lineage went back",
					c.tr, m.name(c.rt, true), c.start, e.tr, m.name(e.newRT, true), e.end)
			}
		}
		if isReuse(c) {
			seen++
			if !dead() && !slices.ContainsFunc(earlier, func(e *callRec) bool { return !e.delivered || w.saveFailed(e, c) }) {
				res.add("reuse", "the server detected the reuse of %s by T%d (seq %d), and no answer for it had been lost",
					m.name(c.rt, true), c.tr, c.start)
			}
		}
		if !c.delivered {
			unanswered++
		}
	}
	if n := int(w.stats.ReuseDetections); n > seen+unanswered {
		res.add("reuse", "the server detected %d reuses; the Transports saw %d, and %d answers did not come back", n, seen, unanswered)
	}
}

// saveFailed reports whether c, by another Transport than the one that
// got the successor in e, presented the refresh token of e because the
// store still held it: every Save of the successor until c had failed.
//
// That is a known defect (TestFailedSaveLeavesOthersASpentToken): the
// Transport whose Save failed repairs the store at its next refresh, but
// another holder may refresh first, with the spent token from the store,
// and reuse detection ends the session of every holder. Until it is fixed,
// the check lets it pass and counts it.
func (w *world) saveFailed(e, c *callRec) bool {
	if c.tr == e.tr {
		return false // the one that knows must never go back
	}
	tried := false
	for _, s := range w.rec.saves {
		if s.method != "Save" || s.start > c.start {
			continue
		}
		if accessOf(s.tok) == e.at {
			tried = true
		}
		if s.wrote && s.start > e.end {
			return false // the store moved on
		}
	}
	return tried
}

// checkRequests: credentials, outcomes and 401s of every request.
func (w *world) checkRequests(res *result, m *model) {
	sendsOf := map[uint64][]*sendRec{}
	for _, s := range w.rec.sends {
		sendsOf[s.req] = append(sendsOf[s.req], s)
		if s.auth == "" {
			continue
		}
		if !s.allowed {
			res.add("credential", "T%d sent a token to a host that may not get it (seq %d)", s.tr, s.start)
		}
		at, ok := strings.CutPrefix(s.auth, "Bearer ")
		switch {
		case !ok || strings.TrimSpace(at) == "":
			res.add("credential", "T%d sent the credential %q (seq %d)", s.tr, s.auth, s.start)
		case m.name(at, false) == "unknown":
			res.add("credential", "T%d sent a token that the server never issued (seq %d)", s.tr, s.start)
		}
	}
	for _, r := range w.rec.requests {
		sends := sendsOf[r.id]
		if len(sends) > 3 || r.kind == reqOneShot && len(sends) > 1 {
			res.add("401", "T%d request #%d (%s) was sent %d times", r.tr, r.id, reqNames[r.kind], len(sends))
		}
		if r.final {
			continue // checkFinal
		}
		switch {
		case r.err != nil:
			w.checkError(res, r)
		case r.kind == reqToken:
			if r.token == nil || r.token.AccessToken == "" {
				res.add("credential", "T%d Token returned no access token (request #%d)", r.tr, r.id)
			}
		case r.status == http.StatusOK:
		case r.status == http.StatusUnauthorized:
			w.check401(res, m, r, sends)
		default:
			res.add("outcome", "T%d request #%d got status %d", r.tr, r.id, r.status)
		}
	}
}

// checkError: a request failed; the error must be one the package
// documents, and a logout's must come after OnLogout.
func (w *world) checkError(res *result, r *requestRec) {
	var re *bearer.RefreshError
	switch {
	case errors.Is(r.err, bearer.ErrLoggedOut):
		// One whose context ended returns at once, without waiting for OnLogout.
		if errors.As(r.err, &re) && !r.cancelled && !slices.ContainsFunc(w.rec.logouts, func(o *hookRec) bool { return o.tr == r.tr && o.end < r.end }) {
			res.add("outcome", "T%d request #%d returned the logout's error (seq %d) before OnLogout had run", r.tr, r.id, r.end)
		}
	case errors.As(r.err, &re), errors.Is(r.err, bearer.ErrNoToken):
	case r.cancelled && errors.Is(r.err, context.Canceled):
	case strings.HasPrefix(r.err.Error(), "bearer: reading token store: "):
		// The store failed on first use; documented as the error's prefix.
	default:
		res.add("outcome", "T%d request #%d (%s) failed with an error the package does not document: %v", r.tr, r.id, reqNames[r.kind], r.err)
	}
}

// check401: a 401 reached the caller; only when one more real refresh
// could not have fixed it.
func (w *world) check401(res *result, m *model, r *requestRec, sends []*sendRec) {
	switch {
	case r.kind == reqOther, r.kind == reqOneShot, len(sends) == 3:
		return
	case len(sends) < 2:
		res.add("401", "T%d request #%d (%s) got the first 401 back without a retry", r.tr, r.id, reqNames[r.kind])
	default:
		at := strings.TrimPrefix(sends[1].auth, "Bearer ")
		if w.adopted(m, r.tr, at) {
			res.add("401", "T%d request #%d got a 401 for the retry with %s, a token adopted from the store, without one real refresh",
				r.tr, r.id, m.name(at, false))
		}
	}
}

// adopted reports whether Transport i can only have got at from the store:
// neither its own refresh nor its own login made it.
func (w *world) adopted(m *model, i int, at string) bool {
	if by, ok := m.mintedBy[at]; ok {
		return by != i
	}
	p, ok := m.at[at]
	return ok && p.n == 0 && p.l.by >= 0 && p.l.by != i
}

// checkLoggedOutLineages: after Transport i logged out of a lineage, no
// request it started carries that lineage. Logout ends every lineage saved
// before it began; OnLogout every lineage saved before the store lock that
// its refresh held.
func (w *world) checkLoggedOutLineages(res *result, m *model) {
	type end struct {
		tr            int
		after, before uint64 // requests after `after` must not carry lineages saved before `before`
		what          string
	}
	var ends []end
	for _, u := range w.rec.users {
		if u.what == "Logout" {
			ends = append(ends, end{u.tr, u.end, u.start, fmt.Sprintf("Logout (seq %d)", u.start)})
		}
	}
	for _, o := range w.rec.logouts {
		var lock uint64
		for _, l := range w.rec.locks {
			if l.tr == o.tr && l.seq < o.start {
				lock = l.seq
			}
		}
		ends = append(ends, end{o.tr, o.end, lock, fmt.Sprintf("OnLogout (seq %d)", o.start)})
	}
	reqs := map[uint64]*requestRec{}
	for _, r := range w.rec.requests {
		reqs[r.id] = r
	}
	for _, s := range w.rec.sends {
		r := reqs[s.req]
		p, ok := m.at[strings.TrimPrefix(s.auth, "Bearer ")]
		if r == nil || !ok {
			continue
		}
		for _, e := range ends {
			if e.tr == s.tr && r.start > e.after && p.l.firstSave < e.before {
				res.add("logged-out lineage", "T%d sent %s (seq %d) in request #%d, begun after its %s had ended lineage L%d",
					s.tr, m.name(strings.TrimPrefix(s.auth, "Bearer "), false), s.start, r.id, e.what, p.l.id)
				break
			}
		}
	}
}

// rank orders tokens: by the store order of their lineage, then by how
// many refreshes in.
type rank struct{ save, n uint64 }

func (a rank) less(b rank) bool { return a.save < b.save || a.save == b.save && a.n < b.n }

// checkBackwards: a request that a Transport begins after one of its sends
// of token x came back never carries a token older than x.
func (w *world) checkBackwards(res *result, m *model) {
	reqs := map[uint64]*requestRec{}
	for _, r := range w.rec.requests {
		reqs[r.id] = r
	}
	rankOf := func(s *sendRec) (rank, bool) {
		p, ok := m.at[strings.TrimPrefix(s.auth, "Bearer ")]
		if !ok || s.auth == "" {
			return rank{}, false
		}
		return rank{p.l.firstSave, uint64(p.n)}, true
	}
	for i := range w.hs {
		var mine []*sendRec
		for _, s := range w.rec.sends {
			if s.tr == i {
				mine = append(mine, s)
			}
		}
		for _, s := range mine {
			r := reqs[s.req]
			got, ok := rankOf(s)
			if r == nil || !ok {
				continue
			}
			for _, e := range mine {
				had, ok := rankOf(e)
				if ok && e.end < r.start && got.less(had) {
					res.add("backwards", "T%d sent %s (seq %d) in request #%d, after its send of the newer %s (seq %d) had come back",
						i, m.name(strings.TrimPrefix(s.auth, "Bearer "), false), s.start, r.id, m.name(strings.TrimPrefix(e.auth, "Bearer "), false), e.start)
					break
				}
			}
		}
	}
}

// checkResurrection: once a Clear succeeded, no Save brings back a lineage
// that was in the store before it.
func (w *world) checkResurrection(res *result, m *model) {
	for _, c := range w.rec.saves {
		if c.method != "Clear" || !c.wrote {
			continue
		}
		for _, s := range w.rec.saves {
			p, ok := m.at[accessOf(s.tok)]
			if s.method == "Save" && ok && s.start > c.end && p.l.firstSave < c.start {
				res.add("resurrection", "T%d saved %s (seq %d) after T%d had cleared the store (seq %d): a logout undone",
					s.tr, m.name(s.tok.AccessToken, false), s.start, c.tr, c.start)
			}
		}
	}
}

// permanentCodes are the token endpoint's words for a dead session.
var permanentCodes = map[string]bool{"invalid_grant": true, "invalid_client": true, "unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true}

// checkOnLogout: each OnLogout has a cause that ends a session, and runs
// once per login per Transport.
func (w *world) checkOnLogout(res *result) {
	cleared := func(before uint64) bool {
		return slices.ContainsFunc(w.rec.saves, func(s *storeRec) bool { return s.method == "Clear" && s.wrote && s.end < before })
	}
	var prev = map[int]*hookRec{}
	for _, o := range w.rec.logouts {
		var re *bearer.RefreshError
		switch {
		case !errors.As(o.err, &re) || !re.Permanent:
			res.add("OnLogout", "T%d OnLogout (seq %d) for a failure that is not permanent: %v", o.tr, o.start, o.err)
		case permanentCodes[re.Code]:
			if !slices.ContainsFunc(w.rec.calls, func(c *callRec) bool {
				return c.tr == o.tr && c.delivered && c.code == re.Code && c.end < o.start
			}) {
				res.add("OnLogout", "T%d OnLogout (seq %d) for %s, which the token endpoint never answered it", o.tr, o.start, re.Code)
			}
		case strings.Contains(o.err.Error(), "cleared by another holder"):
			if !cleared(o.start) {
				res.add("OnLogout", "T%d OnLogout (seq %d) for an empty store that nothing cleared: %v", o.tr, o.start, o.err)
			}
		default:
			res.add("OnLogout", "T%d OnLogout (seq %d) for neither a rejected refresh token nor a logout elsewhere: %v", o.tr, o.start, o.err)
		}
		if a := prev[o.tr]; a != nil && !slices.ContainsFunc(w.rec.users, func(u *userRec) bool {
			return u.tr == o.tr && u.what == "SetToken" && u.err == nil && u.end > a.start && u.start < o.start
		}) {
			res.add("OnLogout", "T%d OnLogout ran again (seq %d and %d) with no login in between", o.tr, a.start, o.start)
		}
		prev[o.tr] = o
	}
}

// checkFinal: after the faults are gone, each Transport serves its request
// or is logged out, with one refresh at most (the wait for its background
// refresh included). A second refresh is allowed only where the server
// ended the session between the two: see revokedBetween.
func (w *world) checkFinal(res *result, m *model) {
	finals := []*requestRec{}
	for _, r := range w.rec.requests {
		if r.final {
			finals = append(finals, r)
		}
	}
	for k, r := range finals {
		until := uint64(never)
		if k+1 < len(finals) {
			until = finals[k+1].start
		}
		var calls []*callRec
		for _, c := range w.rec.calls {
			if c.tr == r.tr && c.start > r.start && c.start < until {
				calls = append(calls, c)
			}
		}
		var re *bearer.RefreshError
		switch {
		case r.err == nil && r.status == http.StatusOK:
		case r.err != nil && (errors.Is(r.err, bearer.ErrLoggedOut) || errors.Is(r.err, bearer.ErrNoToken)):
			// Logged out, or never logged in: its first read found the store empty.
		case errors.As(r.err, &re) && re.Permanent && slices.ContainsFunc(calls, func(c *callRec) bool { return c.delivered && permanentCodes[c.code] }):
			// Never logged in, it tried the token in the store, which the
			// server rejects: a dead session that a failed Clear left there.
		case r.err != nil:
			res.add("final", "T%d's request after the faults were gone failed: %v", r.tr, r.err)
		default:
			res.add("final", "T%d's request after the faults were gone got status %d", r.tr, r.status)
		}
		if len(calls) > 1 && !revokedBetween(m, r, calls) {
			res.add("final", "T%d needed %d token requests to serve one request after the faults were gone", r.tr, len(calls))
		}
	}
}

// revokedBetween reports whether the final request r needed its second
// token request because the server revoked the session after the first:
// the first rotated the pair and came back, the second was refused for a
// dead session, r ended logged out, and the model says the server could
// revoke that lineage at any time from before r began. That is so once an
// answer was lost for a token that may have been retired: the server may
// take the abandoned request up late, after the faults were cleared and
// after this refresh rotated the same token, see it reused, and revoke
// the lineage (seen in CI: seed 0x16d8552da6f9bb4f).
func revokedBetween(m *model, r *requestRec, calls []*callRec) bool {
	if len(calls) != 2 || !errors.Is(r.err, bearer.ErrLoggedOut) {
		return false
	}
	first, second := calls[0], calls[1]
	p, ok := m.rt[first.rt]
	return ok && first.delivered && first.rotated() && second.rt == first.newRT &&
		second.delivered && permanentCodes[second.code] && p.l.dead < r.start
}
