package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// ratioUnits get a ratio column when the scenario has the base contender.
var ratioUnits = []string{"ns/op", "cpu-ns/op", "B/op", "allocs/op"}

// scenario holds every sample of one scenario, by contender and unit, in the
// order they were read: the i-th samples of two contenders come from the same
// pass when the passes were interleaved.
type scenario struct {
	name       string
	contenders []string
	units      []string
	samples    map[string]map[string][]float64 // contender → unit → samples
}

// group sorts results into scenarios, keeping the order of first appearance.
func group(results []result) []*scenario {
	var out []*scenario
	byName := map[string]*scenario{}
	for _, r := range results {
		name, who := split(r.name)
		s := byName[name]
		if s == nil {
			s = &scenario{name: name, samples: map[string]map[string][]float64{}}
			byName[name] = s
			out = append(out, s)
		}
		if s.samples[who] == nil {
			s.samples[who] = map[string][]float64{}
			s.contenders = append(s.contenders, who)
		}
		for _, u := range r.units {
			if !slices.Contains(s.units, u) {
				s.units = append(s.units, u)
			}
			s.samples[who][u] = append(s.samples[who][u], r.values[u])
		}
	}
	for _, s := range out {
		s.units = orderUnits(s.units)
	}
	return out
}

// orderUnits puts the ratio units first, in their order, then the others sorted.
func orderUnits(units []string) []string {
	var std, other []string
	for _, u := range ratioUnits {
		if slices.Contains(units, u) {
			std = append(std, u)
		}
	}
	for _, u := range units {
		if !slices.Contains(ratioUnits, u) {
			other = append(other, u)
		}
	}
	slices.Sort(other)
	return append(std, other...)
}

// median returns the median of xs, or NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// spread is the median absolute deviation of xs from their median, relative
// to the median, in percent: half the samples lie within ±spread of the
// median, whatever a few outliers did. NaN when it cannot be computed.
func spread(xs []float64) float64 {
	m := median(xs)
	if len(xs) < 2 || m == 0 || math.IsNaN(m) {
		return math.NaN()
	}
	dev := make([]float64, len(xs))
	for i, x := range xs {
		dev[i] = math.Abs(x - m)
	}
	return 100 * median(dev) / math.Abs(m)
}

// pairedRatio is the median of xs[i]/base[i]: each sample is compared with
// the base's sample of the same pass, so that a slow moment of a shared
// machine weighs on both. NaN when no pair has a non-zero base.
func pairedRatio(xs, base []float64) float64 {
	var r []float64
	for i := range min(len(xs), len(base)) {
		if base[i] != 0 {
			r = append(r, xs[i]/base[i])
		}
	}
	return median(r)
}

// table is a rendered comparison.
type table struct {
	title string
	head  []string
	rows  [][]string
}

// tables builds one table per scenario; base names the contender that the
// ratios refer to.
func tables(scenarios []*scenario, base string) []table {
	var out []table
	for _, s := range scenarios {
		if len(s.contenders) == 1 && s.contenders[0] == "" {
			out = append(out, transposed(s))
			continue
		}
		_, hasBase := s.samples[base]
		t := table{title: s.name, head: []string{"contender"}}
		for _, u := range s.units {
			t.head = append(t.head, u)
			if hasBase && slices.Contains(ratioUnits, u) {
				t.head = append(t.head, "vs "+base)
			}
		}
		for _, who := range s.contenders {
			row := []string{who}
			for _, u := range s.units {
				xs := s.samples[who][u]
				row = append(row, cell(xs, u))
				if hasBase && slices.Contains(ratioUnits, u) {
					row = append(row, ratioCell(pairedRatio(xs, s.samples[base][u])))
				}
			}
			t.rows = append(t.rows, row)
		}
		out = append(out, t)
	}
	return out
}

// transposed renders a benchmark without sub-benchmarks, which may report
// many metrics, as one row per metric.
func transposed(s *scenario) table {
	t := table{title: s.name, head: []string{"metric", "median"}}
	for _, u := range s.units {
		t.rows = append(t.rows, []string{u, cell(s.samples[""][u], u)})
	}
	return t
}

// cell renders the median of xs, in unit, and its spread: "123 ±4%".
// Ratios always get two decimals, so that 1.00 does not read as a count.
func cell(xs []float64, unit string) string {
	m := median(xs)
	if math.IsNaN(m) {
		return "–"
	}
	s := number(m)
	if strings.Contains(unit, "-vs-") || strings.Contains(unit, "ratio") {
		s = fmt.Sprintf("%.2f", m)
	}
	if sp := spread(xs); !math.IsNaN(sp) && sp >= 0.5 {
		s += fmt.Sprintf(" ±%.0f%%", sp)
	}
	return s
}

func ratioCell(r float64) string {
	if math.IsNaN(r) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", r)
}

// number renders v with about three significant digits.
func number(v float64) string {
	a := math.Abs(v)
	switch {
	case v == math.Trunc(v) && a < 1e15:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// markdown writes t as a titled markdown table with aligned columns.
func (t table) markdown(w io.Writer) error {
	width := make([]int, len(t.head))
	for i, h := range t.head {
		width[i] = len([]rune(h))
	}
	for _, r := range t.rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### Benchmark%s\n\n", t.title)
	line := func(cells []string) {
		b.WriteString("|")
		for i, c := range cells {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i == 0 {
				fmt.Fprintf(&b, " %s%s |", c, pad)
			} else {
				fmt.Fprintf(&b, " %s%s |", pad, c)
			}
		}
		b.WriteString("\n")
	}
	line(t.head)
	b.WriteString("|")
	for i, n := range width {
		if i == 0 {
			b.WriteString(" " + strings.Repeat("-", n) + " |")
		} else {
			b.WriteString(" " + strings.Repeat("-", n-1) + ": |")
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		line(r)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}
