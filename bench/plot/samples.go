package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// request is one API request of a run, in milliseconds from the login.
type request struct {
	start, ms float64
	waited    bool // held for a refresh while its token was valid
}

// window is a stretch during which a token request was in flight, in
// milliseconds from the login.
type window struct{ start, end float64 }

// series is one contender's run.
type series struct {
	requests []request
	windows  []window // merged, in order
}

// columns the CSV must have; "waited" is optional.
var required = []string{"contender", "run", "kind", "start_ms", "ms"}

// readRuns reads the CSV written by the bench package's
// BenchmarkRefreshWindow (-bench.refreshwindow.csv) and returns the run
// numbered run of each contender that has one.
func readRuns(r io.Reader, run int) (map[string]*series, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("reading the header: %w", err)
	}
	col := map[string]int{}
	for i, name := range header {
		col[name] = i
	}
	for _, name := range required {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("the CSV has no %q column", name)
		}
	}
	waitedCol, hasWaited := col["waited"]
	want := strconv.Itoa(run)
	out := map[string]*series{}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err // csv errors name the line
		}
		if rec[col["run"]] != want {
			continue
		}
		start, err1 := strconv.ParseFloat(rec[col["start_ms"]], 64)
		ms, err2 := strconv.ParseFloat(rec[col["ms"]], 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		s := out[rec[col["contender"]]]
		if s == nil {
			s = &series{}
			out[rec[col["contender"]]] = s
		}
		switch kind := rec[col["kind"]]; kind {
		case "request":
			s.requests = append(s.requests, request{start: start, ms: ms,
				waited: hasWaited && rec[waitedCol] == "1"})
		case "refresh":
			s.windows = append(s.windows, window{start: start, end: start + ms})
		default:
			return nil, fmt.Errorf("line %d: unknown kind %q", line, kind)
		}
	}
	for _, s := range out {
		s.windows = merge(s.windows)
	}
	return out, nil
}

// merge sorts ws and merges the ones that overlap.
func merge(ws []window) []window {
	slices.SortFunc(ws, func(a, b window) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
	var out []window
	for _, w := range ws {
		if n := len(out); n > 0 && w.start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, w.end)
			continue
		}
		out = append(out, w)
	}
	return out
}
