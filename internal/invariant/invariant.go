package invariant

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/store"
)

// The environment variables that change a run (see the package doc).
const (
	RunEnv   = "BEARER_INVARIANTS"
	SeedEnv  = "BEARER_INVARIANTS_SEED"
	StepsEnv = "BEARER_INVARIANTS_STEPS"
)

// Config describes the histories of one test.
type Config struct {
	// Stores are the kinds of store a history may run on; each history
	// draws one. Required.
	Stores []StoreKind

	// Prepare, if set, is called on each new Transport with the clock it
	// must use (bearer.SetClock) and may make its retries fast. The
	// histories then jump and skew the Transports' clocks. If nil, the
	// Transports keep the real clock and only the server's clock jumps.
	Prepare func(tr *bearer.Transport, now func() time.Time)

	// Settle, if set, waits for the background refreshes of tr
	// (bearer.Settle). Whether set or not, a history waits for every
	// shared refresh that its hooks saw start.
	Settle func(tr *bearer.Transport)

	// Faults are faults of the store's own, drawn like the others.
	Faults []Fault

	// RefreshTimeout of the Transports; it is also what a token endpoint
	// timeout costs. Zero means one second.
	RefreshTimeout time.Duration

	// Budget is how long a run lasts when the environment does not say;
	// under -short, a fifth of it.
	Budget time.Duration
}

// StoreKind is one kind of store.
type StoreKind struct {
	Name string
	// New prepares the store of one history and returns, for Transport i,
	// the store it uses: one value for all of them (a Memory), or one each
	// over shared state (a File on one path, a Redis key), as separate
	// processes would have.
	New func(t testing.TB) func(i int) store.Store
}

// Fault is a fault of a store's own, such as Redis paused.
type Fault struct {
	Name   string
	Weight int
	// Gen draws the fault's parameters from r and returns its description
	// and what carries it out.
	Gen func(r *rand.Rand) (desc string, do func())
	// Heal ends whatever the fault left behind, before a history settles.
	Heal func()
}

// Run runs the histories of cfg, as many or for as long as the
// environment says, and fails t with the first history that breaks an
// invariant.
func Run(t *testing.T, cfg Config) {
	if cfg.RefreshTimeout == 0 {
		cfg.RefreshTimeout = time.Second
	}
	if seed, ok := os.LookupEnv(SeedEnv); ok {
		replay(t, &cfg, seed)
		return
	}
	count, budget := plan(t, cfg.Budget)
	master := uint64(time.Now().UnixNano())
	t.Logf("run seed %#x; %s", master, budgetString(count, budget))
	seeds := rand.New(rand.NewPCG(master, 1))
	start := time.Now()
	var total stats
	n := 0
	for ; count > 0 && n < count || count == 0 && time.Since(start) < budget; n++ {
		h := draw(seeds.Uint64(), &cfg)
		if testing.Verbose() {
			t.Logf("history %d: seed %#x", n, h.seed) // on the way out if the process dies
		}
		res := runHistory(t, &cfg, h)
		total.add(res.stats)
		if len(res.violations) > 0 {
			fail(t, &cfg, h, res, n)
			return
		}
	}
	t.Logf("%d histories in %v: %s", n, time.Since(start).Round(time.Millisecond), total)
}

// plan reads how many histories to run (count > 0) or for how long.
func plan(t *testing.T, def time.Duration) (count int, budget time.Duration) {
	v := os.Getenv(RunEnv)
	if v == "" {
		if testing.Short() {
			return 0, def / 5
		}
		return 0, def
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return n, 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a count of histories or a duration", RunEnv, v)
	}
	return 0, d
}

func budgetString(count int, budget time.Duration) string {
	if count > 0 {
		return fmt.Sprintf("%d histories", count)
	}
	return fmt.Sprintf("histories for %v (%s=30s or =500 for more)", budget, RunEnv)
}

// replay runs the history of one seed, restricted to StepsEnv if set, as
// many times as RunEnv says (once by default), and fails at the first
// broken invariant.
func replay(t *testing.T, cfg *Config, seedText string) {
	seed, err := strconv.ParseUint(seedText, 0, 64)
	if err != nil {
		t.Fatalf("%s=%q: want a number such as 0x1f2e", SeedEnv, seedText)
	}
	h := draw(seed, cfg)
	if v := os.Getenv(StepsEnv); v != "" {
		h.keep = map[int]bool{}
		for _, f := range strings.Split(v, ",") {
			i, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || i < 0 || i >= len(h.steps) {
				t.Fatalf("%s=%q: %q is not a step of this history (0..%d)", StepsEnv, v, f, len(h.steps)-1)
			}
			h.keep[i] = true
		}
	}
	count, budget := plan(t, 0)
	if count == 0 && budget == 0 {
		count = 1
	}
	t.Logf("replaying:\n%s", h)
	start := time.Now()
	for n := 0; count > 0 && n < count || count == 0 && time.Since(start) < budget; n++ {
		res := runHistory(t, cfg, h)
		if len(res.violations) > 0 {
			t.Errorf("replay %d of seed %#x broke an invariant:\n%s", n, seed, res.describe(h))
			return
		}
	}
}

// fail reports a failing history, after looking for a shorter list of
// steps that fails the same way.
func fail(t *testing.T, cfg *Config, h *history, res *result, n int) {
	t.Errorf("history %d broke an invariant:\n%s\n%s", n, h, res.describe(h))
	short := shrink(t, cfg, h, res.violations[0].check)
	steps := make([]string, len(short))
	for i, s := range short {
		steps[i] = strconv.Itoa(s)
	}
	replayCmd := fmt.Sprintf("%s=%#x", SeedEnv, h.seed)
	if len(short) < len(h.steps) {
		h.keep = map[int]bool{}
		for _, s := range short {
			h.keep[s] = true
		}
		replayCmd += fmt.Sprintf(" %s=%s", StepsEnv, strings.Join(steps, ","))
		t.Errorf("a shorter history that breaks %q too:\n%s", res.violations[0].check, h)
	}
	t.Errorf("replay: %s go test -race -run '^%s$' (add %s=20 to run it 20 times)", replayCmd, t.Name(), RunEnv)
}

// shrink drops steps of h, one at a time from the last, keeping each drop
// after which a replay (of up to three) still breaks check; it stops after
// shrinkBudget. It returns the indexes of the steps left.
func shrink(t *testing.T, cfg *Config, h *history, check string) []int {
	const shrinkBudget = 30 * time.Second
	start := time.Now()
	keep := h.running()
	for i := len(keep) - 1; i >= 0 && time.Since(start) < shrinkBudget; i-- {
		try := slices.Delete(slices.Clone(keep), i, i+1)
		c := *h
		c.keep = map[int]bool{}
		for _, s := range try {
			c.keep[s] = true
		}
		for range 3 {
			res := runHistory(t, cfg, &c)
			if res.broke(check) {
				keep = try
				break
			}
		}
	}
	return keep
}
