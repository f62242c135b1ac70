// Command plot draws the picture of the refresh-window benchmark in
// BENCHMARKS.md: request latency over time across the refresh windows, one
// panel per contender, from the CSV that BenchmarkRefreshWindow writes with
// -bench.refreshwindow.csv:
//
//	go test -run='^$' -bench=RefreshWindow ./bench -bench.refreshwindow=12s -bench.refreshwindow.csv=/tmp/refreshwindow.csv
//	(cd bench/plot && go run . -in /tmp/refreshwindow.csv -out ../refreshwindow.png)
//
// It is a module of its own so that the plotting library stays out of the
// core module's go.mod.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "the CSV written by -bench.refreshwindow.csv (required)")
	out := fs.String("out", "refreshwindow.png", "the PNG to write")
	contenders := fs.String("contenders", "bearer,bearer-wait", "the contenders to draw, one panel each, top to bottom")
	runNo := fs.Int("run", 1, "which run of each contender to draw, from 1 (the CSV holds every run of a -count)")
	width := fs.Int("width", 1200, "width in pixels")
	height := fs.Int("height", 720, "height in pixels")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("-in names the CSV; no arguments")
	}
	f, err := os.Open(*in)
	if err != nil {
		return err
	}
	defer f.Close()
	runs, err := readRuns(f, *runNo)
	if err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	var img bytes.Buffer
	if err := drawPNG(&img, runs, strings.Split(*contenders, ","), *width, *height); err != nil {
		return err
	}
	return os.WriteFile(*out, img.Bytes(), 0o644)
}
