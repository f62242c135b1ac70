// Command benchcmp prints the benchmarks of package bench as comparison
// tables: for each scenario, the median of every contender's measurements,
// their spread (±: the median absolute deviation, relative to the median),
// and the ratio to the header-only limit for ns/op, cpu-ns/op, B/op and
// allocs/op.
//
// It reads the standard `go test -bench` output from files or stdin:
//
//	go test -run='^$' -bench=. -count=6 ./bench > bench.txt
//	go run ./internal/cmd/benchcmp bench.txt
//
// or runs the benchmarks itself with -run: it builds the test binary once and
// runs every benchmark -passes times, one pass after the other, so that the
// contenders of a scenario run side by side within each pass. Ratios are
// medians of per-pass ratios, which keeps a busy moment of a shared machine
// from favouring one contender:
//
//	go run ./internal/cmd/benchcmp -run -passes=6 -raw=bench.txt
//
// The output is markdown, ready for BENCHMARKS.md.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	run       bool
	passes    int
	bench     string
	benchtime string
	soak      string
	pkg       string
	base      string
	raw       string
	files     []string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("benchcmp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.run, "run", false, "run the benchmarks instead of reading their output")
	fs.IntVar(&o.passes, "passes", 6, "with -run: how many times to run every benchmark")
	fs.StringVar(&o.bench, "bench", ".", "with -run: which benchmarks (a -test.bench pattern)")
	fs.StringVar(&o.benchtime, "benchtime", "1s", "with -run: -test.benchtime of each benchmark")
	fs.StringVar(&o.soak, "soak", "", "with -run: -bench.soak, how long one soak lasts (default 2s)")
	fs.StringVar(&o.pkg, "pkg", "github.com/seamlessauth/bearer/bench", "with -run: the package to benchmark")
	fs.StringVar(&o.base, "base", "header", "the contender that ratios refer to")
	fs.StringVar(&o.raw, "raw", "", "with -run: also write the raw benchmark output to this file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: benchcmp [flags] [file ...]   (no file: read stdin)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.files = fs.Args()
	switch {
	case o.run && len(o.files) > 0:
		return o, errors.New("benchcmp: -run takes no files")
	case o.passes < 1:
		return o, errors.New("benchcmp: -passes must be at least 1")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	var results []result
	switch {
	case o.run:
		results, err = runPasses(ctx, o, stderr)
	case len(o.files) == 0:
		results, err = parse(stdin)
	default:
		results, err = parseFiles(o.files)
	}
	if err != nil {
		return err
	}
	if len(results) == 0 {
		return errors.New("benchcmp: no benchmark results found")
	}
	for _, t := range tables(group(results), o.base) {
		if err := t.markdown(stdout); err != nil {
			return fmt.Errorf("benchcmp: writing the table: %w", err)
		}
	}
	return nil
}

func parseFiles(names []string) ([]result, error) {
	var all []result
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("benchcmp: %w", err)
		}
		res, err := parse(f)
		f.Close()
		if err != nil {
			return nil, err
		}
		all = append(all, res...)
	}
	return all, nil
}

// runPasses builds the test binary of o.pkg and runs its benchmarks o.passes
// times, each pass running each benchmark once.
func runPasses(ctx context.Context, o options, stderr io.Writer) ([]result, error) {
	dir, err := os.MkdirTemp("", "benchcmp")
	if err != nil {
		return nil, fmt.Errorf("benchcmp: %w", err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "bench.test")
	build := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, o.pkg)
	build.Stdout, build.Stderr = stderr, stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("benchcmp: building %s: %w", o.pkg, err)
	}
	var raw bytes.Buffer
	args := []string{"-test.run=^$", "-test.bench=" + o.bench, "-test.benchtime=" + o.benchtime, "-test.count=1"}
	if o.soak != "" {
		args = append(args, "-bench.soak="+o.soak)
	}
	for pass := 1; pass <= o.passes; pass++ {
		fmt.Fprintf(stderr, "benchcmp: pass %d of %d\n", pass, o.passes)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdout, cmd.Stderr = &raw, stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("benchcmp: pass %d: %w\n%s", pass, err, lastLines(raw.Bytes(), 20))
		}
	}
	if o.raw != "" {
		if err := os.WriteFile(o.raw, raw.Bytes(), 0o644); err != nil {
			return nil, fmt.Errorf("benchcmp: %w", err)
		}
	}
	return parse(&raw)
}

// lastLines returns the end of a failed run's output, for the error.
func lastLines(b []byte, n int) []byte {
	b = bytes.TrimRight(b, "\n")
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			if n--; n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}
