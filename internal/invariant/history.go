package invariant

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// This file draws a history from its seed: the world it runs in and its
// steps, each a few operations that run at once.

// The shape of every world: tokens live accessTTL by the server's clock.
const (
	accessTTL = 60 * time.Second
	minSteps  = 8
	maxSteps  = 20
)

// history is one drawn history.
type history struct {
	seed    uint64
	store   int              // index into Config.Stores
	leeway  time.Duration    // Config.Leeway of every Transport
	waitFor []bool           // Config.WaitForRefresh per Transport
	steps   []step           // all of them; a replay may run a subset
	keep    map[int]bool     // the steps to run; nil: all
	names   func(int) string // the name of store kind i, for printing
}

// step is a few operations that run at once.
type step []op

type kind int

const (
	opRequests       kind = iota // a burst of concurrent requests
	opRevokeAccess               // the server revokes every access token
	opEndOne                     // the API rejects the next request as if its token had ended
	opRevokeRefresh              // the server revokes every lineage so far
	opRevokeLineage              // the server revokes the newest lineage the world saw
	opJump                       // every clock, the server's too, jumps forward
	opSkew                       // one Transport's clock is set off the server's
	opTokenFault                 // the next token requests fail
	opLose                       // the next successful token answers are lost after the server rotated
	opStoreFault                 // the next store calls of a method fail, stall or panic
	opRefresherPanic             // the next Refresher calls panic
	opHookPanic                  // the next calls of a hook (or the log handler) panic
	opSetToken                   // a fresh login on one Transport
	opLogout                     // Logout on one Transport
	opCloseIdle                  // CloseIdleConnections on one Transport
	opExtra                      // a fault of the store's own (Config.Faults)
)

// op is one operation of a step, with everything drawn for it.
type op struct {
	kind  kind
	tr    int           // the Transport it concerns
	n     int           // how many calls a fault spoils
	d     time.Duration // a clock move, a skew or a stall
	what  string        // which fault, store method or hook
	reqs  []reqSpec     // opRequests
	extra int           // opExtra: index into Config.Faults
	desc  string        // opExtra: what it does
	do    func()        // opExtra: the action
}

// reqKind is what a request of a burst is.
type reqKind int

const (
	reqGet     reqKind = iota // GET, no body
	reqPost                   // POST with a body that GetBody replays
	reqOneShot                // POST with a body that cannot be replayed
	reqOther                  // GET to a host that may not get the token
	reqToken                  // Transport.Token
)

var reqNames = [...]string{"get", "post", "oneshot", "other", "token"}

// reqSpec is one request of a burst.
type reqSpec struct {
	tr     int
	kind   reqKind
	cancel time.Duration // cancel its context this long after it starts; < 0: never
}

func (r reqSpec) String() string {
	s := fmt.Sprintf("%d:%s", r.tr, reqNames[r.kind])
	if r.cancel >= 0 {
		s += fmt.Sprintf("+cancel@%v", r.cancel)
	}
	return s
}

func (o op) String() string {
	switch o.kind {
	case opRequests:
		parts := make([]string, len(o.reqs))
		for i, r := range o.reqs {
			parts[i] = r.String()
		}
		return "requests[" + strings.Join(parts, " ") + "]"
	case opRevokeAccess:
		return "server: revoke every access token"
	case opEndOne:
		return "server: end the next request's token early (401 invalid_token)"
	case opRevokeRefresh:
		return "server: revoke every lineage so far"
	case opRevokeLineage:
		return "server: revoke the newest lineage"
	case opJump:
		return fmt.Sprintf("clock: every clock jumps %v", o.d)
	case opSkew:
		return fmt.Sprintf("clock: T%d's clock set %v off the server's", o.tr, o.d)
	case opTokenFault:
		return fmt.Sprintf("token endpoint: next %d answer %s", o.n, o.what)
	case opLose:
		return fmt.Sprintf("token endpoint: lose the next %d successful answer(s) after rotation", o.n)
	case opStoreFault:
		s := fmt.Sprintf("store: next %d %s", o.n, o.what)
		if o.d > 0 {
			s += fmt.Sprintf(" (%v)", o.d)
		}
		return s
	case opRefresherPanic:
		return fmt.Sprintf("Refresher: next %d call(s) panic", o.n)
	case opHookPanic:
		return fmt.Sprintf("%s: next %d call(s) panic", o.what, o.n)
	case opSetToken:
		return fmt.Sprintf("user: T%d SetToken(fresh login)", o.tr)
	case opLogout:
		return fmt.Sprintf("user: T%d Logout", o.tr)
	case opCloseIdle:
		return fmt.Sprintf("user: T%d CloseIdleConnections", o.tr)
	case opExtra:
		return o.desc
	}
	return fmt.Sprintf("op(%d)", o.kind)
}

// weighted is a name drawn with a weight.
type weighted struct {
	name   string
	weight int
}

// Token endpoint faults, by name (see world.tokenFault).
var tokenFaults = []weighted{
	{"503", 4}, {"503 Retry-After:1", 2}, {"429", 1}, {"reset", 3}, {"truncated", 1},
	{"malformed", 1}, {"invalid_request", 3}, {"slow", 3}, {"timeout", 1}, {"invalid_grant", 1},
}

// Store faults: methods, and what happens to them.
var (
	storeMethods = []string{"Save", "Save", "Save", "Load", "Lock", "Lock", "Clear"}
	storeKinds   = []string{"fail", "fail", "slow", "panic"}
	hooks        = []string{"OnRefreshStart", "OnRefresh", "OnRetry", "OnLogout", "log handler"}
)

// draw makes the history of seed for cfg. A world with clocks (cfg.Prepare
// set) also jumps and skews the Transports' clocks.
func draw(seed uint64, cfg *Config) *history {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	h := &history{seed: seed, store: r.IntN(len(cfg.Stores))}
	h.names = func(i int) string { return cfg.Stores[i].Name }
	n := 2 + r.IntN(3)
	h.leeway = []time.Duration{0, 10 * time.Second, 20 * time.Second, -1}[r.IntN(4)]
	h.waitFor = make([]bool, n)
	for i := range h.waitFor {
		h.waitFor[i] = r.IntN(4) == 0
	}
	type choice struct {
		w  int
		fn func() op
	}
	clocks := cfg.Prepare != nil
	tr := func() int { return r.IntN(n) }
	choices := []choice{
		{30, func() op { return op{kind: opRequests, reqs: drawBurst(r, n)} }},
		{4, func() op { return op{kind: opRevokeAccess} }},
		{4, func() op { return op{kind: opEndOne} }},
		{1, func() op { return op{kind: opRevokeRefresh} }},
		{1, func() op { return op{kind: opRevokeLineage} }},
		{8, func() op { return op{kind: opJump, d: drawJump(r, h.leeway)} }},
		{8, func() op {
			o := op{kind: opTokenFault, what: pick(r, tokenFaults), n: 1 + r.IntN(3)}
			if o.what == "invalid_grant" || o.what == "timeout" {
				o.n = 1
			}
			return o
		}},
		{2, func() op { return op{kind: opLose, n: 1} }},
		{8, func() op {
			o := op{kind: opStoreFault, what: storeMethods[r.IntN(len(storeMethods))] + " " + storeKinds[r.IntN(len(storeKinds))], n: 1 + r.IntN(3)}
			if o.what == "Save fail" && r.IntN(2) == 0 {
				o.what = "Save fail-after-write"
			}
			if strings.HasSuffix(o.what, "slow") {
				o.d = time.Duration(5+r.IntN(40)) * time.Millisecond
			}
			return o
		}},
		{2, func() op { return op{kind: opRefresherPanic, n: 1} }},
		{2, func() op { return op{kind: opHookPanic, what: hooks[r.IntN(len(hooks))], n: 1 + r.IntN(2)} }},
		{6, func() op { return op{kind: opSetToken, tr: tr()} }},
		{3, func() op { return op{kind: opLogout, tr: tr()} }},
		{2, func() op { return op{kind: opCloseIdle, tr: tr()} }},
	}
	if clocks {
		choices = append(choices, choice{3, func() op {
			d := time.Duration(r.IntN(81)-40) * time.Second
			if r.IntN(3) == 0 {
				d = 0
			}
			return op{kind: opSkew, tr: tr(), d: d}
		}})
	}
	for i, f := range cfg.Faults {
		choices = append(choices, choice{f.Weight, func() op {
			desc, do := f.Gen(r)
			return op{kind: opExtra, extra: i, desc: desc, do: do}
		}})
	}
	total := 0
	for _, c := range choices {
		total += c.w
	}
	steps := minSteps + r.IntN(maxSteps-minSteps+1)
	for range steps {
		k := 1
		switch x := r.IntN(20); {
		case x >= 17:
			k = 3
		case x >= 10:
			k = 2
		}
		var s step
		for range k {
			x := r.IntN(total)
			for _, c := range choices {
				if x < c.w {
					s = append(s, c.fn())
					break
				}
				x -= c.w
			}
		}
		h.steps = append(h.steps, s)
	}
	return h
}

// drawBurst draws the requests of one burst: 1–8 of them, on one Transport
// or spread over all, now and then one cancelled.
func drawBurst(r *rand.Rand, transports int) []reqSpec {
	n := 1 + r.IntN(8)
	one := r.IntN(2) == 0
	t0 := r.IntN(transports)
	reqs := make([]reqSpec, n)
	for i := range reqs {
		s := reqSpec{tr: t0, cancel: -1}
		if !one {
			s.tr = r.IntN(transports)
		}
		switch x := r.IntN(20); {
		case x < 9:
			s.kind = reqGet
		case x < 14:
			s.kind = reqPost
		case x < 16:
			s.kind = reqOneShot
		case x < 17:
			s.kind = reqOther
		default:
			s.kind = reqToken
		}
		if r.IntN(10) == 0 {
			s.cancel = time.Duration(r.IntN(3000)) * time.Microsecond
		}
		reqs[i] = s
	}
	return reqs
}

// drawJump draws a clock jump: a little, into the refresh window, into the
// must-wait margin, or past expiry.
func drawJump(r *rand.Rand, leeway time.Duration) time.Duration {
	lw := leeway
	switch {
	case lw == 0:
		lw = 30 * time.Second // the default, which is also half the lifetime
	case lw < 0:
		lw = 10 * time.Second // no proactive refresh: this only ages the token
	}
	sec := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(r.Int64N(int64(hi-lo)/int64(time.Second)+1))*time.Second
	}
	switch r.IntN(4) {
	case 0:
		return sec(time.Second, 10*time.Second)
	case 1:
		return sec(accessTTL-lw+time.Second, accessTTL-6*time.Second)
	case 2:
		return sec(accessTTL-5*time.Second, accessTTL-time.Second)
	}
	return sec(accessTTL+time.Second, accessTTL+30*time.Second)
}

// pick draws the name of one of xs by weight.
func pick(r *rand.Rand, xs []weighted) string {
	total := 0
	for _, x := range xs {
		total += x.weight
	}
	n := r.IntN(total)
	for _, x := range xs {
		if n < x.weight {
			return x.name
		}
		n -= x.weight
	}
	return xs[len(xs)-1].name
}

// running returns the indexes of the steps that run.
func (h *history) running() []int {
	var idx []int
	for i := range h.steps {
		if h.keep == nil || h.keep[i] {
			idx = append(idx, i)
		}
	}
	return idx
}

// String prints the history: its world, then its steps by index.
func (h *history) String() string {
	var b strings.Builder
	lw := "default"
	switch {
	case h.leeway < 0:
		lw = "off"
	case h.leeway > 0:
		lw = h.leeway.String()
	}
	fmt.Fprintf(&b, "seed %#x: %d Transports on %s, access TTL %v, leeway %s, WaitForRefresh %v\n",
		h.seed, len(h.waitFor), h.names(h.store), accessTTL, lw, h.waitFor)
	for _, i := range h.running() {
		ops := make([]string, len(h.steps[i]))
		for j, o := range h.steps[i] {
			ops[j] = o.String()
		}
		fmt.Fprintf(&b, "  step %2d: %s\n", i, strings.Join(ops, "  ||  "))
	}
	return b.String()
}
