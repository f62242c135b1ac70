package bench

import (
	"testing"
	"time"
)

// cpuMeter reports the process CPU time per operation as cpu-ns/op. Unlike
// ns/op, which is wall time, it does not grow while other processes hold the
// CPU, so it stays comparable on a shared machine; it includes the garbage
// collector's work, which ns/op hides when the collector runs on another core.
type cpuMeter struct {
	start time.Duration
	ok    bool
}

func startCPU() cpuMeter {
	t, ok := cpuTime()
	return cpuMeter{start: t, ok: ok}
}

// report reports the CPU time since startCPU divided by ops.
func (m cpuMeter) report(b *testing.B, ops int) {
	end, ok := cpuTime()
	if !m.ok || !ok || ops <= 0 {
		return
	}
	b.ReportMetric(float64(end-m.start)/float64(ops), "cpu-ns/op")
}
