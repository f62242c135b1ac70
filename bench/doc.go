// Package bench measures bearer against the RoundTrippers a Go program would
// otherwise use, side by side in one run. It holds only benchmarks (in its
// _test.go files); this file documents them.
//
// Contenders, as sub-benchmark names:
//
//	none    the base RoundTripper alone: no authentication (the floor)
//	header  clones the request and sets a fixed Authorization header: the
//	        least that any auth transport must do (the limit)
//	oauth2  oauth2.Transport over oauth2.ReuseTokenSource, as returned by
//	        oauth2.Config.Client
//	axios   a port of the refresh interceptor web clients write for axios:
//	        every 401 refreshes with the refresh token it knows and retries
//	        once; nothing is collapsed
//	bearer  bearer.Transport with the bearer.OAuth2 refresher
//	bearer-wait  the same with Config.WaitForRefresh, the opt-out from
//	        background refreshes (BenchmarkRefreshWindow only)
//
// Benchmarks:
//
//	BenchmarkHotPath           valid token, a stub base answering without network
//	BenchmarkHotPathParallel   the same under b.RunParallel
//	BenchmarkHotPathMixed      the same, contenders taking turns in one loop
//	BenchmarkHotPathSteps      the steps of bearer's hot path, priced one by one
//	BenchmarkThroughput        64 goroutines against a loopback bearertest API
//	BenchmarkThroughputMixed   the same, contenders taking turns against one server
//	BenchmarkStorm             1,000 and 10,000 requests fired at once with a
//	                           token the server has just revoked
//	BenchmarkSoak              32 goroutines for a while (-bench.soak, 2s by
//	                           default) with 200ms access tokens, refresh token
//	                           rotation and reuse detection
//	BenchmarkRefreshWindow     32 workers through proactive refreshes at a
//	                           300–600 ms token endpoint (-bench.refreshwindow,
//	                           3s by default; -bench.refreshwindow.csv writes
//	                           every request for the bench/plot tool)
//
// The Mixed variants exist because wall time on a shared machine drifts:
// contenders measured in the same rounds feel the same drift, so their ratios
// hold still when their ns/op do not. Run everything, and compare the
// contenders of each scenario, with
//
//	go test -run='^$' -bench=. -benchmem -count=6 ./bench > bench.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /contender bench.txt
//
// BENCHMARKS.md at the root of the module explains every number. The steps
// of bearer's own hot path are priced by BenchmarkHotPathSteps in the root
// package, which can call them.
package bench
