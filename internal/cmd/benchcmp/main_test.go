package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sample is `go test -bench` output of two interleaved passes.
const sample = `goos: linux
goarch: amd64
pkg: github.com/seamlessauth/bearer/bench
BenchmarkHotPath/header-2     1000000   500.0 ns/op   752 B/op   4 allocs/op
BenchmarkHotPath/bearer-2     1000000   550.0 ns/op   768 B/op   5 allocs/op
BenchmarkStorm/n=1000/bearer-2   1   3000000 ns/op   1.000 refreshes   100.0 success-%
BenchmarkMixed-2   10   5000 ns/op   800 bearer-ns/op   1.000 bearer-vs-header
PASS
ok  	github.com/seamlessauth/bearer/bench	3.1s
BenchmarkHotPath/header-2     1000000   1000 ns/op   752 B/op   4 allocs/op
BenchmarkHotPath/bearer-2     1000000   1200 ns/op   768 B/op   5 allocs/op
--- BENCH: BenchmarkStorm/n=1000/bearer-2
    storm_test.go:1: a log line
BenchmarkStorm/n=1000/bearer-2   1   5000000 ns/op   1.000 refreshes   100.0 success-%
PASS
`

func TestParseLine(t *testing.T) {
	tests := []struct {
		line   string
		ok     bool
		name   string
		values map[string]float64
	}{
		{"BenchmarkHotPath/bearer-2  100  550.5 ns/op  768 B/op", true, "HotPath/bearer",
			map[string]float64{"ns/op": 550.5, "B/op": 768}},
		{"BenchmarkX  7  1 ns/op", true, "X", map[string]float64{"ns/op": 1}},
		{"BenchmarkStorm/n=1000/axios-16  1  2e+06 ns/op  -3.5 excess-ms", true, "Storm/n=1000/axios",
			map[string]float64{"ns/op": 2e6, "excess-ms": -3.5}},
		{"BenchmarkHotPath/bearer-2", false, "", nil},                      // name only (-v)
		{"BenchmarkHotPath/bearer-2  100  fast ns/op", false, "", nil},     // not a number
		{"BenchmarkHotPath/bearer-2  100  550 ns/op  768", false, "", nil}, // value without unit
		{"--- BENCH: BenchmarkStorm/n=1000/bearer-2", false, "", nil},
		{"ok  \tgithub.com/x\t3.1s", false, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			res, ok := parseLine(tt.line)
			require.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.name, res.name)
			if tt.ok {
				assert.Equal(t, tt.values, res.values)
			}
		})
	}
}

func TestTrimProcsAndSplit(t *testing.T) {
	tests := []struct {
		in, trimmed, scenario, contender string
	}{
		{"HotPath/bearer-2", "HotPath/bearer", "HotPath", "bearer"},
		{"Storm/n=10000/axios-16", "Storm/n=10000/axios", "Storm/n=10000", "axios"},
		{"Soak/bearer", "Soak/bearer", "Soak", "bearer"},
		{"HotPath/bearer-proto", "HotPath/bearer-proto", "HotPath", "bearer-proto"},
		{"Alone-2", "Alone", "Alone", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := trimProcs(tt.in)
			assert.Equal(t, tt.trimmed, got)
			s, c := split(got)
			assert.Equal(t, tt.scenario, s)
			assert.Equal(t, tt.contender, c)
		})
	}
}

func TestStatistics(t *testing.T) {
	assert.True(t, math.IsNaN(median(nil)))
	assert.Equal(t, 2.0, median([]float64{3, 1, 2}))
	assert.Equal(t, 2.5, median([]float64{4, 1, 3, 2}))
	assert.InDelta(t, 10.0, spread([]float64{100, 150, 90}), 1e-9, "an outlier does not count")
	assert.True(t, math.IsNaN(spread([]float64{5})))
	// Pass by pass: 1.1, 1.2 and 2.0 → median 1.2, whatever the medians of
	// each side would say.
	assert.InDelta(t, 1.2, pairedRatio([]float64{110, 240, 2000}, []float64{100, 200, 1000}), 1e-9)
	assert.True(t, math.IsNaN(pairedRatio([]float64{1}, []float64{0})))
}

func TestTables(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	require.NoError(t, err)
	require.Len(t, res, 7)
	ts := tables(group(res), "header")
	require.Len(t, ts, 3)

	hot := ts[0]
	assert.Equal(t, "HotPath", hot.title)
	assert.Equal(t, []string{"contender", "ns/op", "vs header", "B/op", "vs header", "allocs/op", "vs header"}, hot.head)
	assert.Equal(t, [][]string{
		{"header", "750 ±33%", "1.00×", "752", "1.00×", "4", "1.00×"},
		{"bearer", "875 ±37%", "1.15×", "768", "1.02×", "5", "1.25×"},
	}, hot.rows)

	storm := ts[1]
	assert.Equal(t, "Storm/n=1000", storm.title)
	assert.Equal(t, []string{"contender", "ns/op", "refreshes", "success-%"}, storm.head, "no base, no ratios")
	assert.Equal(t, [][]string{{"bearer", "4000000 ±25%", "1", "100"}}, storm.rows)

	mixed := ts[2]
	assert.Equal(t, "Mixed", mixed.title)
	assert.Equal(t, []string{"metric", "median"}, mixed.head, "one row per metric")
	assert.Equal(t, [][]string{{"ns/op", "5000"}, {"bearer-ns/op", "800"}, {"bearer-vs-header", "1.00"}}, mixed.rows)
}

func TestRunReadsFilesAndStdin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.txt")
	require.NoError(t, os.WriteFile(path, []byte(sample), 0o600))
	var fromFile, fromStdin, stderr bytes.Buffer
	require.NoError(t, run(context.Background(), []string{path}, strings.NewReader(""), &fromFile, &stderr))
	require.NoError(t, run(context.Background(), nil, strings.NewReader(sample), &fromStdin, &stderr))

	assert.Equal(t, fromFile.String(), fromStdin.String())
	want := "### BenchmarkHotPath\n\n" +
		"| contender |    ns/op | vs header | B/op | vs header | allocs/op | vs header |\n" +
		"| --------- | -------: | --------: | ---: | --------: | --------: | --------: |\n" +
		"| header    | 750 ±33% |     1.00× |  752 |     1.00× |         4 |     1.00× |\n" +
		"| bearer    | 875 ±37% |     1.15× |  768 |     1.02× |         5 |     1.25× |\n\n"
	assert.True(t, strings.HasPrefix(fromFile.String(), want), fromFile.String())
	assert.Contains(t, fromFile.String(), "### BenchmarkStorm/n=1000\n")
}

func TestRunRejects(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"no results", nil, "PASS\n", "no benchmark results"},
		{"run with files", []string{"-run", "x.txt"}, "", "-run takes no files"},
		{"no passes", []string{"-run", "-passes=0"}, "", "-passes must be at least 1"},
		{"missing file", []string{filepath.Join(t.TempDir(), "none.txt")}, "", "benchcmp: open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, stderr bytes.Buffer
			err := run(context.Background(), tt.args, strings.NewReader(tt.stdin), &out, &stderr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Empty(t, out.String())
		})
	}
}
