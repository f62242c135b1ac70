package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// result is one benchmark line: a name and its measurements.
type result struct {
	name   string             // without "Benchmark" and the -GOMAXPROCS suffix
	values map[string]float64 // by unit: "ns/op", "allocs/op", "p99-ms", ...
	units  []string           // in the order of the line
}

// parse reads the standard `go test -bench` output format and returns the
// benchmark lines in order. Everything else (headers, PASS, logs) is skipped.
func parse(r io.Reader) ([]result, error) {
	var out []result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if res, ok := parseLine(sc.Text()); ok {
			out = append(out, res)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("benchcmp: reading benchmark output: %w", err)
	}
	return out, nil
}

// parseLine parses "BenchmarkName-8  1000  123 ns/op  45 B/op ...".
func parseLine(line string) (result, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || len(f)%2 != 0 || !strings.HasPrefix(f[0], "Benchmark") {
		return result{}, false
	}
	if _, err := strconv.ParseUint(f[1], 10, 64); err != nil {
		return result{}, false
	}
	res := result{name: trimProcs(strings.TrimPrefix(f[0], "Benchmark")), values: map[string]float64{}}
	for i := 2; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return result{}, false
		}
		unit := f[i+1]
		if _, dup := res.values[unit]; !dup {
			res.units = append(res.units, unit)
		}
		res.values[unit] = v
	}
	return res, true
}

// trimProcs removes the "-N" that the testing package appends when
// GOMAXPROCS is not 1.
func trimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name
	}
	return name[:i]
}

// split cuts a benchmark name into its scenario and contender: the
// contender is the last element ("Storm/n=1000/bearer" → "Storm/n=1000",
// "bearer"); a name without "/" is a scenario of its own.
func split(name string) (scenario, contender string) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return name, ""
	}
	return name[:i], name[i+1:]
}
