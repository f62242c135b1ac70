package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tiny is a CSV as BenchmarkRefreshWindow writes it: two runs of bearer,
// one of bearer-wait, each with one refresh window of two token requests.
const tiny = `contender,run,kind,start_ms,ms,held_ms,window,valid,waited,ok
bearer,1,refresh,2000.000,450.000,,,,,1
bearer,1,refresh,2100.000,500.000,,,,,1
bearer,1,request,1000.000,0.800,0.010,0,1,0,1
bearer,1,request,2200.000,1.100,0.010,1,1,0,1
bearer,1,request,3000.000,0.000,0.010,0,1,0,1
bearer,2,request,1000.000,9.000,0.010,0,1,0,1
bearer-wait,1,refresh,2000.000,450.000,,,,,1
bearer-wait,1,request,1000.000,0.900,0.010,0,1,0,1
bearer-wait,1,request,2100.000,351.000,350.000,1,1,1,1
`

func TestReadRuns(t *testing.T) {
	runs, err := readRuns(strings.NewReader(tiny), 1)
	require.NoError(t, err)
	require.Len(t, runs, 2)
	assert.Equal(t, []window{{start: 2000, end: 2600}}, runs["bearer"].windows, "overlapping requests merge")
	assert.Len(t, runs["bearer"].requests, 3, "run 1 only")
	assert.Equal(t, []request{{start: 1000, ms: 0.9}, {start: 2100, ms: 351, waited: true}}, runs["bearer-wait"].requests)

	runs, err = readRuns(strings.NewReader(tiny), 2)
	require.NoError(t, err)
	assert.Equal(t, []request{{start: 1000, ms: 9}}, runs["bearer"].requests)
}

func TestReadRunsRejects(t *testing.T) {
	tests := []struct {
		name, csv, want string
	}{
		{"empty", "", "reading the header"},
		{"a column missing", "contender,run,kind,start_ms\n", `no "ms" column`},
		{"not a number", "contender,run,kind,start_ms,ms\nbearer,1,request,soon,1\n", "line 2"},
		{"unknown kind", "contender,run,kind,start_ms,ms\nbearer,1,retry,1,1\n", `unknown kind "retry"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readRuns(strings.NewReader(tt.csv), 1)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func TestRunDrawsAPNG(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "rw.csv"), filepath.Join(dir, "rw.png")
	require.NoError(t, os.WriteFile(in, []byte(tiny), 0o600))

	var stderr bytes.Buffer
	require.NoError(t, run([]string{"-in", in, "-out", out, "-width", "600", "-height", "400"}, &stderr))
	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	require.NoError(t, err)
	assert.Equal(t, 600, cfg.Width)
	assert.Equal(t, 400, cfg.Height)
	assert.Empty(t, stderr.String())
}

func TestRunNeedsTheContenders(t *testing.T) {
	in := filepath.Join(t.TempDir(), "rw.csv")
	require.NoError(t, os.WriteFile(in, []byte(tiny), 0o600))
	err := run([]string{"-in", in, "-out", filepath.Join(t.TempDir(), "rw.png"), "-contenders", "bearer,oauth2"}, &bytes.Buffer{})
	assert.ErrorContains(t, err, `no run of contender "oauth2"`)
	assert.Error(t, run(nil, &bytes.Buffer{}), "-in is required")
}
