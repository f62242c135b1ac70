package invariant

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
)

// finalWorld is the end of the history of seed 0x16d8552da6f9bb4f, as CI
// recorded it: two refreshes of the seed's token got no answer (the second
// while the first might have retired it), then T0's final request
// refreshed it, was refused by the API with the new token, and was told at
// its second refresh that the lineage was revoked. lost says whether those
// two answers were lost; without them, nothing could have revoked the
// lineage.
func finalWorld(lost bool) *world {
	w := &world{seed: &oauth2.Token{AccessToken: "at0", RefreshToken: "rt0"}}
	if lost {
		w.rec.calls = append(w.rec.calls,
			&callRec{tr: 0, rt: "rt0", start: 167, end: 207},
			&callRec{tr: 1, rt: "rt0", start: 209, end: 210})
	}
	w.rec.calls = append(w.rec.calls,
		&callRec{tr: 0, rt: "rt0", start: 228, end: 229, delivered: true, status: http.StatusOK, at: "at1", newRT: "rt1"},
		&callRec{tr: 0, rt: "rt1", start: 235, end: 236, delivered: true, status: http.StatusBadRequest,
			code: "invalid_grant", desc: "refresh token revoked"})
	w.rec.requests = []*requestRec{{id: 58, tr: 0, final: true, start: 226, end: 241,
		err: fmt.Errorf("bearer: %w: refresh rejected", bearer.ErrLoggedOut)}}
	return w
}

func TestFinalAllowsARevocationBetweenItsRefreshes(t *testing.T) {
	w := finalWorld(true)
	res := &result{w: w}
	w.checkFinal(res, w.model())
	assert.Empty(t, res.violations, "an abandoned refresh of rt0 may reach the server after the final one and revoke the lineage")
}

func TestFinalRefusesASecondRefreshOfALiveLineage(t *testing.T) {
	w := finalWorld(false)
	res := &result{w: w}
	w.checkFinal(res, w.model())
	assert.True(t, res.broke("final"), "no answer was lost: nothing could revoke the lineage between the two refreshes")
}
