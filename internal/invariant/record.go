package invariant

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
)

// This file holds what a history records. Every record takes its place in
// one order, the world's sequence: start is taken before the thing happens
// and end after it, so "a.end < b.start" means a was over before b began.

// recorder collects the records of one history.
type recorder struct {
	seq    atomic.Uint64
	reqIDs atomic.Uint64

	mu       sync.Mutex
	requests []*requestRec
	sends    []*sendRec
	calls    []*callRec
	saves    []*storeRec // Save and Clear calls
	locks    []lockRec
	logouts  []*hookRec // OnLogout calls
	users    []*userRec // SetToken and Logout calls
	revokes  []*revokeRec
	events   []bearer.RefreshEvent
	leaks    []string // log records and errors that showed a token
	panics   []string // panics that reached a caller
	stuck    []string // waits that never ended
}

func (r *recorder) tick() uint64 { return r.seq.Add(1) }

func (r *recorder) add(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn()
}

// requestRec is one call of RoundTrip or Token by the history.
type requestRec struct {
	id         uint64
	tr         int
	kind       reqKind
	cancelled  bool // its context was set to be cancelled
	final      bool // one of the requests after the history settled
	start, end uint64
	took       time.Duration // wall time, for a trace of real clocks and servers
	status     int
	err        error
	token      *oauth2.Token // what Token returned
}

// sendRec is one request that reached the API through a Transport's base.
type sendRec struct {
	req        uint64 // the requestRec it belongs to
	tr         int
	auth       string
	allowed    bool // its host may get the token
	start, end uint64
	status     int
}

// callRec is one token request, as the base saw it.
type callRec struct {
	tr         int
	rt         string // the refresh token presented
	start, end uint64
	delivered  bool   // the Transport got the answer
	lost       bool   // the server answered 200 and the history dropped it
	status     int    // 0 when no answer came back
	code, desc string // of an error answer
	at, newRT  string // of a successful answer, lost or not
}

// storeRec is one Save or Clear that the store was asked for.
type storeRec struct {
	tr         int
	method     string
	tok        *oauth2.Token // Save's
	start, end uint64
	wrote      bool // it is known to have written
	err        error
}

// lockRec is one store lock taken.
type lockRec struct {
	tr   int
	seq  uint64
	wait time.Duration // from the call of Lock until it returned
}

// hookRec is one call of OnLogout.
type hookRec struct {
	tr         int
	start, end uint64
	err        error
}

// userRec is one SetToken or Logout.
type userRec struct {
	tr         int
	what       string
	tok        *oauth2.Token // SetToken's
	start, end uint64
	err        error
}

// revokeRec is one forced revocation at the server.
type revokeRec struct {
	what       string // "access", "lineages" or "lineage"
	rt         string // "lineage": a refresh token of the lineage
	start, end uint64
}

// secret matches an bearertest access or refresh token.
var secret = regexp.MustCompile(`\b(at|rt)_[A-Z2-7]{20,}`)

// leak records s if it shows a token.
func (r *recorder) leak(where, s string) {
	if secret.MatchString(s) {
		r.add(func() { r.leaks = append(r.leaks, where+": "+secret.ReplaceAllString(s, "$1_…")) })
	}
}

// Context keys: which Transport and which request a call belongs to.
type (
	holderKey  struct{}
	requestKey struct{}
)

func holderOf(ctx context.Context) int {
	if i, ok := ctx.Value(holderKey{}).(int); ok {
		return i
	}
	return -1
}

func requestOf(ctx context.Context) uint64 {
	id, _ := ctx.Value(requestKey{}).(uint64)
	return id
}

// flights counts the shared refreshes under way, as the hooks see them
// start and end, so that a history can wait until none is left.
type flights struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0
}

func (f *flights) start() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		f.idle = make(chan struct{})
	}
	f.n++
}

func (f *flights) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 {
		close(f.idle)
	}
}

// wait waits until no shared refresh is under way, or reports how many
// still are after timeout.
func (f *flights) wait(timeout time.Duration) error {
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return nil
	}
	idle := f.idle
	f.mu.Unlock()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-idle:
		return nil
	case <-timer.C:
		f.mu.Lock()
		defer f.mu.Unlock()
		return fmt.Errorf("%d shared refresh(es) still under way after %v", f.n, timeout)
	}
}
