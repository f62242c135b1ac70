// Command fleet runs N workers that share one token through Redis, as the
// replicas of a service sharing one service-account token would: each worker
// has its own bearer.Transport and its own redisstore.Store on the same key.
// The token server (bearertest, on loopback) rotates refresh tokens
// and revokes the whole session if one is used twice, and its access tokens
// live one second, so the workers must refresh together, once per expiry.
//
//	redis-server --bind 127.0.0.1 --port 6390 --save '' --appendonly no --daemonize yes
//	go run ./examples/fleet -redis 127.0.0.1:6390 -workers 8 -duration 5s
//
// It prints what happened, never a token, and exits with status 1 if a
// request failed or a worker was logged out.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/store/redisstore"
)

func main() {
	addr := flag.String("redis", envOr("BEARER_REDIS_ADDR", "127.0.0.1:6379"), "address of the Redis server")
	workers := flag.Int("workers", 8, "workers, each with its own Transport and Store")
	duration := flag.Duration("duration", 5*time.Second, "how long to run")
	ttl := flag.Duration("ttl", time.Second, "lifetime of the access tokens")
	flag.Parse()
	if err := run(*addr, *workers, *duration, *ttl); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

func run(addr string, workers int, duration, ttl time.Duration) error {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("no Redis at %s: %w", addr, err)
	}
	srv := bearertest.NewServer(bearertest.Options{AccessTTL: ttl, Rotate: true, ReuseDetection: true})
	defer srv.Close()

	// One key for the whole fleet. Log in once: the first worker to start
	// finds the token there.
	const identity = "fleet-example"
	login, err := redisstore.New(rdb, identity)
	if err != nil {
		return err
	}
	if err := login.Save(ctx, srv.Issue()); err != nil {
		return err
	}
	defer login.Clear(ctx)

	var requests, failures, logouts, adopted atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(duration)
	for range workers {
		st, err := redisstore.New(rdb, identity)
		if err != nil {
			return err
		}
		tr, err := bearer.New(bearer.Config{
			Refresher: bearer.OAuth2(srv.Config()),
			Store:     st,
			Leeway:    ttl / 5,
			OnLogout:  func(context.Context, error) { logouts.Add(1) },
			OnRefresh: func(_ context.Context, ev bearer.RefreshEvent) {
				if ev.Adopted {
					adopted.Add(1)
				}
			},
		})
		if err != nil {
			return err
		}
		defer tr.CloseIdleConnections()
		client := tr.Client()
		wg.Go(func() {
			for i := 0; i < 10_000 && time.Now().Before(deadline); i++ {
				requests.Add(1)
				resp, err := client.Get(srv.APIURL + "/things")
				if err != nil {
					failures.Add(1)
					fmt.Fprintln(os.Stderr, "request failed:", err)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failures.Add(1)
				}
				time.Sleep(10 * time.Millisecond) // a worker's pace
			}
		})
	}
	wg.Wait()

	stats := srv.Stats()
	fmt.Printf("%d workers, %v: %d requests, %d failed\n", workers, duration, requests.Load(), failures.Load())
	fmt.Printf("refreshes: %d (access tokens live %v), adopted by other workers: %d\n", stats.Refreshes, ttl, adopted.Load())
	fmt.Printf("reuse detections: %d, logouts: %d\n", stats.ReuseDetections, logouts.Load())
	if failures.Load() > 0 || logouts.Load() > 0 || stats.ReuseDetections > 0 {
		return fmt.Errorf("the fleet did not share its token cleanly")
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
