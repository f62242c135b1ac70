package invariant

import (
	"fmt"
	"math"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
)

// This file rebuilds the lineages of a history from its records: which
// login each token descends from, how many refreshes in, and from when the
// server may have revoked it.

// never is a sequence number after everything.
const never = math.MaxUint64

// lineage is one login's family of tokens, as the checker reconstructs it.
type lineage struct {
	id        int
	issued    uint64 // when it began: 0 for the seed, else its SetToken's start
	firstSave uint64 // the first Save of one of its tokens; its place in the store's order
	dead      uint64 // from when the server may have revoked it
	by        int    // the Transport whose SetToken made it; -1 for the seed
}

// place is where a token sits: its lineage and how many refreshes in.
type place struct {
	l *lineage
	n int
}

// model maps every token of a history to its place.
type model struct {
	lineages []*lineage
	at, rt   map[string]place
	mintedBy map[string]int // access token → the Transport whose token request got it
}

func (w *world) model() *model {
	m := &model{at: map[string]place{}, rt: map[string]place{}, mintedBy: map[string]int{}}
	login := func(tok *oauth2.Token, issued uint64, by int) {
		l := &lineage{id: len(m.lineages), issued: issued, firstSave: never, dead: never, by: by}
		m.lineages = append(m.lineages, l)
		m.at[tok.AccessToken] = place{l, 0}
		m.rt[tok.RefreshToken] = place{l, 0}
	}
	login(w.seed, 0, -1)
	m.lineages[0].firstSave = 0 // saved before the Transports began
	for _, u := range w.rec.users {
		if u.what == "SetToken" {
			login(u.tok, u.start, u.tr)
		}
	}
	for _, c := range w.rec.calls {
		if p, ok := m.rt[c.rt]; ok && c.rotated() {
			m.at[c.at] = place{p.l, p.n + 1}
			if c.newRT != "" {
				m.rt[c.newRT] = place{p.l, p.n + 1}
			}
			if c.delivered {
				m.mintedBy[c.at] = c.tr
			}
		}
	}
	for _, s := range w.rec.saves {
		if p, ok := m.at[accessOf(s.tok)]; ok && s.method == "Save" && s.start < p.l.firstSave {
			p.l.firstSave = s.start
		}
	}
	kill := func(l *lineage, at uint64) { l.dead = min(l.dead, at) }
	for _, r := range w.rec.revokes {
		switch r.what {
		case "lineages":
			for _, l := range m.lineages {
				if l.issued < r.end {
					kill(l, r.start)
				}
			}
		case "lineage":
			if p, ok := m.rt[r.rt]; ok {
				kill(p.l, r.start)
			}
		}
	}
	// A reuse detection kills its lineage; so may a presentation whose
	// answer never came back, of a token that may have been retired.
	retired := map[string]bool{}
	for _, c := range w.rec.calls {
		p, ok := m.rt[c.rt]
		switch {
		case !ok:
		case isReuse(c), !c.delivered && retired[c.rt]:
			kill(p.l, c.start)
		}
		if c.rotated() || !c.delivered {
			retired[c.rt] = true
		}
	}
	return m
}

func accessOf(tok *oauth2.Token) string {
	if tok == nil {
		return ""
	}
	return tok.AccessToken
}

// rotated reports whether the server answered c with a new pair.
func (c *callRec) rotated() bool { return c.status == http.StatusOK && c.at != "" }

func isReuse(c *callRec) bool { return c.code == "invalid_grant" && strings.Contains(c.desc, "reused") }

// name is a token as the report prints it: L<lineage>.<refreshes>.
func (m *model) name(tok string, refresh bool) string {
	places := m.at
	if refresh {
		places = m.rt
	}
	if p, ok := places[tok]; ok {
		return fmt.Sprintf("L%d.%d", p.l.id, p.n)
	}
	if tok == "" {
		return "none"
	}
	return "unknown"
}
