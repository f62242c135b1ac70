package bench

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"
)

// rwRun is what one BenchmarkRefreshWindow run recorded.
type rwRun struct {
	sc          rwScenario
	tokenExpiry time.Duration // the login token's expiry, from the login
	requests    []*rwRequest
	refreshes   []span // token requests that started within the run
}

// rwClass is what one request of a run was.
type rwClass struct {
	held   time.Duration // from its start to its first send (to its end if never sent)
	window bool          // in flight at some moment of a refresh window
	valid  bool          // the token the contender held when it started was valid
	waited bool          // held at least sc.held, in a window, with a valid token
}

// rwClassifier classifies the requests of one run.
type rwClassifier struct {
	windows     []span
	okEnds      []time.Duration // ends of the successful token requests, sorted
	tokenExpiry time.Duration
	ttl, held   time.Duration
}

func (r *rwRun) classifier() rwClassifier {
	c := rwClassifier{windows: windows(r.refreshes), tokenExpiry: r.tokenExpiry, ttl: r.sc.ttl, held: r.sc.held}
	for _, s := range r.refreshes {
		if s.ok {
			c.okEnds = append(c.okEnds, s.end)
		}
	}
	slices.Sort(c.okEnds)
	return c
}

// class classifies q. The token a contender holds at a moment is the one
// from the last successful token request that ended before it (the login's
// before the first), valid for the server's lifetime from that end: the
// server issues it after its delay, just before answering.
func (c rwClassifier) class(q *rwRequest) rwClass {
	held := q.end - q.start
	if sent := time.Duration(q.sent.Load()); sent > 0 {
		held = sent - q.start
	}
	i := sort.Search(len(c.windows), func(i int) bool { return c.windows[i].end > q.start })
	window := i < len(c.windows) && c.windows[i].start < q.end
	validUntil := c.tokenExpiry
	if n := sort.Search(len(c.okEnds), func(i int) bool { return c.okEnds[i] > q.start }); n > 0 {
		validUntil = c.okEnds[n-1] + c.ttl
	}
	valid := q.start < validUntil
	return rwClass{held: held, window: window, valid: valid, waited: held >= c.held && window && valid}
}

// windows merges token requests that overlap into refresh windows, in
// order of time.
func windows(refreshes []span) []span {
	s := slices.Clone(refreshes)
	slices.SortFunc(s, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	var out []span
	for _, r := range s {
		if n := len(out); n > 0 && r.start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, r.end)
			continue
		}
		out = append(out, span{start: r.start, end: r.end})
	}
	return out
}

// expiries counts the groups of windows (in order) that lie less than gap
// apart: the token requests of one expiry.
func expiries(ws []span, gap time.Duration) int {
	n := 0
	for i, w := range ws {
		if i == 0 || w.start-ws[i-1].end >= gap {
			n++
		}
	}
	return n
}

// rwSummary is what BenchmarkRefreshWindow reports, for one run or summed
// over several.
type rwSummary struct {
	runs                         int
	requests, failures, waitedOK int
	refreshes, expiries          int
	windowLatency, steadyLatency latencies
}

// summary classifies every request of r. An expiry is a group of windows
// less than a quarter of the token lifetime apart: refreshes at the right
// pace are half a lifetime apart or more.
func (r *rwRun) summary() rwSummary {
	c := r.classifier()
	s := rwSummary{runs: 1, requests: len(r.requests), refreshes: len(r.refreshes),
		expiries: expiries(c.windows, r.sc.ttl/4)}
	for _, q := range r.requests {
		cl := c.class(q)
		if !q.ok {
			s.failures++
		}
		if cl.waited {
			s.waitedOK++
		}
		if cl.window {
			s.windowLatency = append(s.windowLatency, q.end-q.start)
		} else {
			s.steadyLatency = append(s.steadyLatency, q.end-q.start)
		}
	}
	return s
}

func (s *rwSummary) add(o rwSummary) {
	s.runs += o.runs
	s.requests += o.requests
	s.failures += o.failures
	s.waitedOK += o.waitedOK
	s.refreshes += o.refreshes
	s.expiries += o.expiries
	s.windowLatency = append(s.windowLatency, o.windowLatency...)
	s.steadyLatency = append(s.steadyLatency, o.steadyLatency...)
}

// report reports the counts per run and the quantiles over every run; a
// ratio without a denominator is left out.
func (s *rwSummary) report(b *testing.B) {
	n := float64(max(s.runs, 1))
	b.ReportMetric(float64(s.requests)/n, "requests")
	b.ReportMetric(float64(s.failures)/n, "failures")
	b.ReportMetric(float64(s.waitedOK)/n, "waited-valid")
	b.ReportMetric(float64(s.expiries)/n, "expiries")
	if s.expiries > 0 {
		b.ReportMetric(float64(s.refreshes)/float64(s.expiries), "refreshes/expiry")
	}
	if len(s.windowLatency) == 0 || len(s.steadyLatency) == 0 {
		return
	}
	win, steady := s.windowLatency.quantile(0.99), s.steadyLatency.quantile(0.99)
	b.ReportMetric(win, "p99-window-ms")
	b.ReportMetric(steady, "p99-steady-ms")
	b.ReportMetric(win/steady, "p99-window/p99-steady")
}

// rwCSVHeader names the columns of the CSV file; bench/plot reads them by
// name. A row is a token request (kind "refresh": start_ms, ms and ok) or a
// request (kind "request": every column). Times are milliseconds from the
// login; the flags are 0 or 1.
var rwCSVHeader = []string{"contender", "run", "kind", "start_ms", "ms", "held_ms", "window", "valid", "waited", "ok"}

// rwCSV is the CSV file of this process's runs: the first write creates
// it, the others append to it, numbering each contender's runs from 1.
var rwCSV struct {
	sync.Mutex
	started bool
	runs    map[string]int
}

// writeRefreshWindowCSV writes every request and token request of r to the
// CSV file at path.
func writeRefreshWindowCSV(path, contender string, r *rwRun) error {
	rwCSV.Lock()
	defer rwCSV.Unlock()
	mode := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if !rwCSV.started {
		mode = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, mode, 0o644)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	w := csv.NewWriter(f)
	if !rwCSV.started {
		_ = w.Write(rwCSVHeader)
		rwCSV.started = true
	}
	if rwCSV.runs == nil {
		rwCSV.runs = map[string]int{}
	}
	rwCSV.runs[contender]++
	writeRWRows(w, contender, rwCSV.runs[contender], r)
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	return f.Close()
}

// writeRWRows writes the rows of run number run of contender; errors stay
// in w.
func writeRWRows(w *csv.Writer, contender string, run int, r *rwRun) {
	id := strconv.Itoa(run)
	for _, s := range r.refreshes {
		_ = w.Write([]string{contender, id, "refresh", ms(s.start), ms(s.end - s.start), "", "", "", "", bit(s.ok)})
	}
	c := r.classifier()
	for _, q := range r.requests {
		cl := c.class(q)
		_ = w.Write([]string{contender, id, "request", ms(q.start), ms(q.end - q.start), ms(cl.held),
			bit(cl.window), bit(cl.valid), bit(cl.waited), bit(q.ok)})
	}
}

func ms(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1e3, 'f', 3, 64) }

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
