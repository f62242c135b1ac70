package bearer_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/store"
)

// The cross-process tests run this test binary again as child processes.
// xprocRoleEnv tells a child what to do; the other variables give it the
// token file, the server and the client credentials.
const (
	xprocRoleEnv     = "BEARER_XPROC_ROLE" // "client" or "hold-lock"
	xprocFileEnv     = "BEARER_XPROC_FILE"
	xprocTokenURLEnv = "BEARER_XPROC_TOKEN_URL"
	xprocAPIURLEnv   = "BEARER_XPROC_API_URL"
	xprocClientEnv   = "BEARER_XPROC_CLIENT_ID"
	xprocSecretEnv   = "BEARER_XPROC_CLIENT_SECRET"
	xprocRunForEnv   = "BEARER_XPROC_RUN_FOR"

	xprocResultPrefix = "xproc-result "
	xprocLockedLine   = "xproc-locked"
)

// The shape of the shared-file test: children × goroutines, each goroutine
// sending at most xprocRequests requests for at most xprocRunFor. The count
// is a bound that a fast machine does not reach before the time is up, so
// that the run sees several expiries.
const (
	xprocChildren   = 4
	xprocGoroutines = 16
	xprocRequests   = 20000
	xprocRunFor     = 4 * time.Second
	// A whole number of seconds: token answers carry expires_in in seconds,
	// and a client that believed a 400ms token lived 1s would adopt tokens
	// the server had already expired.
	xprocAccessTTL = time.Second
)

// xprocResult is what a client child reports, as one JSON line.
type xprocResult struct {
	Requests  int64    `json:"requests"`
	Successes int64    `json:"successes"`
	Failures  int64    `json:"failures"`
	Logouts   int64    `json:"logouts"`
	Refreshes int64    `json:"refreshes"` // shared refreshes that called the server
	Adopted   int64    `json:"adopted"`   // shared refreshes that adopted another process's token
	First     int64    `json:"first"`     // when the first request was sent, Unix nanoseconds
	Last      int64    `json:"last"`      // when the last request ended, Unix nanoseconds
	Errors    []string `json:"errors,omitempty"`
}

// TestCrossProcessHelper is the body of the child processes; run directly,
// it skips.
func TestCrossProcessHelper(t *testing.T) {
	switch role := os.Getenv(xprocRoleEnv); role {
	case "":
		t.Skip("run as a child process by the cross-process tests")
	case "client":
		xprocClient(t)
	case "hold-lock":
		xprocHoldLock(t)
	default:
		t.Fatalf("unknown role %q", role)
	}
}

// xprocClient sends requests from xprocGoroutines goroutines through one
// Transport on the shared token file, and prints its counts.
func xprocClient(t *testing.T) {
	runFor, err := time.ParseDuration(os.Getenv(xprocRunForEnv))
	require.NoError(t, err)
	file, err := store.NewFile(os.Getenv(xprocFileEnv))
	require.NoError(t, err)
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	cfg := &oauth2.Config{
		ClientID:     os.Getenv(xprocClientEnv),
		ClientSecret: os.Getenv(xprocSecretEnv),
		Endpoint:     oauth2.Endpoint{TokenURL: os.Getenv(xprocTokenURLEnv), AuthStyle: oauth2.AuthStyleInHeader},
	}
	var res xprocResult
	var mu sync.Mutex // guards res.Errors
	var logouts, refreshes, adopted atomic.Int64
	tr, err := bearer.New(bearer.Config{
		Refresher: bearer.OAuth2(cfg),
		Store:     file,
		Base:      base,
		// Refresh at expiry, not before, so that refreshes count expiries.
		Leeway:   -1,
		OnLogout: func(context.Context, error) { logouts.Add(1) },
		OnRefresh: func(_ context.Context, ev bearer.RefreshEvent) {
			switch {
			case ev.Adopted:
				adopted.Add(1)
			case ev.Err == nil && ev.Attempts > 0:
				refreshes.Add(1)
			}
		},
	})
	require.NoError(t, err)

	// The refresher's requests use the same pooled connections.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: base})
	client := tr.Client()
	api := os.Getenv(xprocAPIURLEnv)
	res.First = time.Now().UnixNano()
	deadline := time.Now().Add(runFor)
	var requests, successes, failures atomic.Int64
	var wg sync.WaitGroup
	for range xprocGoroutines {
		wg.Go(func() {
			for i := 0; i < xprocRequests && time.Now().Before(deadline); i++ {
				requests.Add(1)
				problem := xprocGet(ctx, client, api)
				if problem == "" {
					successes.Add(1)
					continue
				}
				failures.Add(1)
				mu.Lock()
				if len(res.Errors) < 5 {
					res.Errors = append(res.Errors, problem)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.Last = time.Now().UnixNano()
	res.Requests, res.Successes, res.Failures = requests.Load(), successes.Load(), failures.Load()
	res.Logouts, res.Refreshes, res.Adopted = logouts.Load(), refreshes.Load(), adopted.Load()
	line, err := json.Marshal(res)
	require.NoError(t, err)
	fmt.Printf("%s%s\n", xprocResultPrefix, line)
}

// xprocGet sends one request and describes what went wrong, if anything.
// The description holds no token: bearer's errors never do, and the body is
// not quoted.
func xprocGet(ctx context.Context, client *http.Client, url string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "status " + resp.Status
	}
	return ""
}

// xprocHoldLock takes the token file's lock, says so, and holds it until
// it is killed (or its stdin closes, should the parent die first).
func xprocHoldLock(t *testing.T) {
	file, err := store.NewFile(os.Getenv(xprocFileEnv))
	require.NoError(t, err)
	unlock, err := file.Lock(context.Background())
	require.NoError(t, err)
	fmt.Println(xprocLockedLine)
	io.Copy(io.Discard, os.Stdin)
	assert.NoError(t, unlock())
}

// xprocCommand returns a command that runs this test binary as a child in
// role, with env added.
func xprocCommand(ctx context.Context, role string, env ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrossProcessHelper$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), append(env, xprocRoleEnv+"="+role)...)
	cmd.Stderr = os.Stderr
	return cmd
}

// TestCrossProcessSharedTokenFile runs 4 processes × 16 goroutines on one
// token file against one server that rotates refresh tokens and revokes the
// whole lineage when a retired one comes back. Access tokens live 1s, so
// they expire several times in the 4 seconds of the test. With the file's
// lock, each expiry costs one refresh in one process while the others adopt
// its token: no refresh token is ever presented twice, nobody is logged out
// and every request succeeds.
func TestCrossProcessSharedTokenFile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes for several seconds")
	}
	srv := bearertest.NewServer(bearertest.Options{AccessTTL: xprocAccessTTL, Rotate: true, ReuseDetection: true})
	defer srv.Close()
	cfg := srv.Config()
	path := filepath.Join(t.TempDir(), "token.json")
	file, err := store.NewFile(path)
	require.NoError(t, err)

	require.NoError(t, file.Save(context.Background(), srv.Issue()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmds := make([]*exec.Cmd, xprocChildren)
	outs := make([]*bytes.Buffer, xprocChildren)
	for i := range cmds {
		cmds[i] = xprocCommand(ctx, "client",
			xprocFileEnv+"="+path,
			xprocTokenURLEnv+"="+srv.TokenURL,
			xprocAPIURLEnv+"="+srv.APIURL,
			xprocClientEnv+"="+cfg.ClientID,
			xprocSecretEnv+"="+cfg.ClientSecret,
			xprocRunForEnv+"="+xprocRunFor.String(),
		)
		outs[i] = new(bytes.Buffer)
		cmds[i].Stdout = outs[i]
		require.NoError(t, cmds[i].Start())
	}
	var total xprocResult
	var first, last int64 // the window in which requests were sent
	for i, cmd := range cmds {
		err := cmd.Wait()
		assert.NoError(t, err, "child %d", i)
		res, ok := xprocParse(outs[i].String())
		if !assert.True(t, ok, "child %d printed no result", i) {
			continue
		}
		t.Logf("child %d: %d requests, %d ok, %d failed, %d logouts, %d refreshes, %d adopted",
			i, res.Requests, res.Successes, res.Failures, res.Logouts, res.Refreshes, res.Adopted)
		assert.Zero(t, res.Failures, "child %d: failed requests, first ones: %q", i, res.Errors)
		assert.Zero(t, res.Logouts, "child %d logged out", i)
		assert.Equal(t, res.Requests, res.Successes, "child %d", i)
		assert.Positive(t, res.Requests, "child %d sent nothing", i)
		if first == 0 || res.First < first {
			first = res.First
		}
		last = max(last, res.Last)
		total.Requests += res.Requests
		total.Refreshes += res.Refreshes
		total.Adopted += res.Adopted
	}
	stats := srv.Stats()
	window := time.Duration(last - first)
	windowExpiries := ceilDiv(window, xprocAccessTTL)
	t.Logf("requests sent during %v (%d expiries of %v); %d requests; server: %d token requests, %d refreshes, %d refresh failures, %d reuse detections, %d API 401s; clients: %d refreshes, %d adoptions",
		window.Round(time.Millisecond), windowExpiries, xprocAccessTTL, total.Requests,
		stats.TokenRequests, stats.Refreshes, stats.RefreshFailures, stats.ReuseDetections, stats.APIUnauthorized,
		total.Refreshes, total.Adopted)

	assert.Zero(t, stats.ReuseDetections, "a refresh token was presented twice")
	assert.Zero(t, stats.RefreshFailures)
	// Refreshes happen only while requests are sent, and two of them are at
	// least an access-token lifetime apart.
	assert.LessOrEqual(t, stats.TokenRequests, windowExpiries+1, "more refreshes than expiries while requests were sent")
	// Every expiry inside the window costs one refresh. Each token lives a
	// lifetime from its refresh, which comes a little after the expiry of
	// the one before, so successive refreshes are a lifetime and a few
	// milliseconds apart: the window holds at least one fewer than the
	// whole lifetimes that fit in it, and a run shorter than two saw too
	// few to tell.
	require.GreaterOrEqual(t, window, 2*xprocAccessTTL, "the test did not see several expiries")
	assert.GreaterOrEqual(t, stats.Refreshes, int64(window/xprocAccessTTL)-1, "fewer refreshes than expiries while requests were sent")
	assert.Equal(t, stats.Refreshes, total.Refreshes, "the server and the clients disagree on the refreshes")
	assert.Positive(t, total.Adopted, "no process ever adopted a token another one saved")
}

// ceilDiv returns how many periods of length p it takes to cover d.
func ceilDiv(d, p time.Duration) int64 { return int64((d + p - 1) / p) }

// xprocParse finds a child's result line in its output.
func xprocParse(out string) (xprocResult, bool) {
	var res xprocResult
	for line := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), xprocResultPrefix); ok {
			return res, json.Unmarshal([]byte(rest), &res) == nil
		}
	}
	return res, false
}

// TestCrossProcessLockDiesWithHolder kills a process with SIGKILL while it
// holds the token file's lock: the operating system releases the lock with
// the process, so the others are not blocked.
func TestCrossProcessLockDiesWithHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.json")
	file, err := store.NewFile(path, store.WithLockRetry(5*time.Millisecond))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cmd := xprocCommand(ctx, "hold-lock", xprocFileEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	xprocWaitFor(t, stdout, xprocLockedLine, 30*time.Second)

	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	_, err = file.Lock(short)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the child does not hold the lock")

	require.NoError(t, cmd.Process.Kill()) // SIGKILL on Unix: the child cannot unlock
	killed := time.Now()
	assert.Error(t, cmd.Wait())

	bounded, cancelBounded := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelBounded()
	unlock, err := file.Lock(bounded)
	require.NoError(t, err, "the lock of a killed process still blocks")
	t.Logf("lock taken %v after the holder was killed", time.Since(killed).Round(time.Microsecond))
	assert.NoError(t, unlock())
}

// xprocWaitFor reads lines from r until one equals want. The reading
// goroutine ends when r does.
func xprocWaitFor(t *testing.T, r io.Reader, want string, timeout time.Duration) {
	t.Helper()
	found := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if sc.Text() == want {
				found <- true
				io.Copy(io.Discard, r)
				return
			}
		}
		found <- false
	}()
	select {
	case ok := <-found:
		require.True(t, ok, "the child ended without printing %q", want)
	case <-time.After(timeout):
		t.Fatalf("the child did not print %q within %v", want, timeout)
	}
}
