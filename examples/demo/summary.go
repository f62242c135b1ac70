package main

import (
	"fmt"
	"strings"
)

// summary prints the results, the naive run's beside the bearer run's
// when there is one.
func (d *display) summary(res, naive *result) {
	runs := []*result{res}
	if naive != nil {
		runs = []*result{naive, res}
	}
	row := func(label string, cell func(r *result) string) {
		var b strings.Builder
		fmt.Fprintf(&b, "  %-34s", label)
		for _, r := range runs {
			fmt.Fprintf(&b, "%22s", cell(r))
		}
		d.printf("%s\n", b.String())
	}
	num := func(f func(r *result) int64) func(*result) string {
		return func(r *result) string { return count(f(r)) }
	}

	d.heading("summary")
	row("", func(r *result) string { return r.name })
	row("workers sent requests for", func(r *result) string { return fmt.Sprintf("%.1fs", r.elapsed.Seconds()) })
	row("requests", num(func(r *result) int64 { return r.requests }))
	row("  succeeded", num(func(r *result) int64 { return r.ok }))
	row("  failed", num(func(r *result) int64 { return r.failed }))
	row("401s from the API", num(func(r *result) int64 { return r.unauthorized }))
	row("requests retried after a 401", num(func(r *result) int64 { return r.retries }))
	row("  then succeeded (401 absorbed)", num(func(r *result) int64 { return r.absorbed }))
	row("token deaths: expiries + revocation", func(r *result) string { return fmt.Sprintf("%d + %d", r.expiries, r.revocations) })
	row("refresh requests to the server", num(func(r *result) int64 { return r.refreshCalls }))
	row("  refreshes granted", num(func(r *result) int64 { return r.refreshes }))
	row("refresh token reuse detected", num(func(r *result) int64 { return r.reuse }))
	row("logout calls", num(func(r *result) int64 { return r.logouts }))
	for _, r := range runs {
		if r.endedEarly != "" {
			d.printf("\n  %s: %s; its workers stopped there.\n", r.name, r.endedEarly)
		}
		if r.failed > 0 {
			d.printf("  %s: first failure: %s\n", r.name, r.firstErr)
		}
	}

	if l := res.logout; l != nil {
		d.printf("\n  Then the server revoked the refresh token (bearer.Transport):\n")
		d.printf("    the dead refresh token was tried %d time(s); OnLogout was called %d time(s)\n", l.refreshCalls, l.logouts)
		d.printf("    %s requests sent after it failed fast with ErrLoggedOut (expected; not counted above)\n", count(l.loggedOut))
		if l.other > 0 {
			d.printf("    %s requests ended otherwise; the first: %s\n", count(l.other), l.firstErr)
		}
	}
}
