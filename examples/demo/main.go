// Demo shows a bearer Transport keeping many concurrent workers logged in
// against a real OAuth2 server running in this process (bearertest,
// on 127.0.0.1): access tokens that live a few seconds, refresh tokens that
// rotate on every use, and reuse detection that ends the session if a
// retired refresh token is ever presented again.
//
// The workers run through several token expiries and one server-side
// revocation of every access token; then the server revokes the refresh
// token, and the logout hook fires once while the workers keep sending.
//
//	go run ./examples/demo                  # 200 workers for 15s, 3s tokens
//	go run ./examples/demo -compare         # first the axios interceptor, then bearer
//	go run ./examples/demo -duration=4s -workers=50
//
// The exit status is 1 if the bearer run lost a request, refreshed more
// often than the tokens died, triggered reuse detection, or did not log out
// exactly once at the end. No token is ever printed.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

// options are the command-line flags.
type options struct {
	workers  int
	duration time.Duration
	ttl      time.Duration
	compare  bool
}

func main() {
	var o options
	flag.IntVar(&o.workers, "workers", 200, "concurrent workers sending requests")
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "how long the workers send requests")
	flag.DurationVar(&o.ttl, "ttl", 3*time.Second, "lifetime of each access token (whole seconds, at least 1s)")
	flag.BoolVar(&o.compare, "compare", false, "first run a port of the axios refresh interceptor against the same kind of server")
	flag.Parse()
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		flag.Usage()
		os.Exit(2)
	}

	d := newDisplay(os.Stdout, isTerminal(os.Stdout))
	var naive *result
	if o.compare {
		d.heading("1. the axios refresh interceptor, ported faithfully (internal/axios)")
		naive = runNaive(o, d)
		d.heading("2. bearer.Transport")
	}
	res := runBearer(o, d)

	d.summary(res, naive)
	if problems := res.problems(); len(problems) > 0 {
		d.printf("\nFAIL: the bearer run did not hold up:\n")
		for _, p := range problems {
			d.printf("  - %s\n", p)
		}
		os.Exit(1)
	}
	d.printf("\nOK: no request lost, one refresh per token death, no reuse, one logout.\n")
}

func (o options) check() error {
	switch {
	case o.workers < 1 || o.workers > 10000:
		return fmt.Errorf("-workers must be between 1 and 10000, not %d", o.workers)
	case o.duration < time.Second || o.duration > 10*time.Minute:
		return fmt.Errorf("-duration must be between 1s and 10m, not %v", o.duration)
	case o.ttl < time.Second || o.ttl > time.Hour:
		return fmt.Errorf("-ttl must be between 1s and 1h, not %v", o.ttl)
	case o.ttl%time.Second != 0:
		// expires_in is a whole number of seconds: a token of 2.5s would be
		// announced as 2s, and refreshed half a second before it dies.
		return fmt.Errorf("-ttl must be a whole number of seconds, not %v", o.ttl)
	}
	return nil
}

// revokeAt is when the server revokes every access token: near the middle
// of the run, halfway between two expiries, so that the revocation and the
// expiries are told apart.
func revokeAt(duration, ttl time.Duration) time.Duration {
	k := max(duration/2/ttl, 1) // expiries before the revocation
	at := k*ttl + ttl/2
	if at >= duration {
		at = (k*ttl + duration) / 2
	}
	if at >= duration {
		at = duration / 2
	}
	return at
}
