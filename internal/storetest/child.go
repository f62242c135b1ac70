package storetest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
)

// childSpec tells a child process what to do.
type childSpec struct {
	Role           string // "fleet" or "holder"
	Addr           string // of the server, as Config.Dial takes it
	Space          string
	Identities     []string
	LockTTL        time.Duration // of the stores, where locks expire
	TokenURL       string
	APIURL         string
	ClientID       string
	ClientSecret   string
	Workers        int           // fleet: goroutines per identity
	Pace           time.Duration // fleet: the least time between two requests of a goroutine
	Duration       time.Duration // fleet: run for this long
	Leeway         time.Duration
	RefreshTimeout time.Duration
}

// childReport is what a fleet child prints, as one JSON line, when done.
type childReport struct {
	Requests      int64
	Failures      int64
	Logouts       int64
	Refreshes     int64 // shared refreshes that called the token endpoint
	Adopted       int64 // shared refreshes that adopted a token another process saved
	RefreshErrors int64
	Errors        []string // the first few failures (bearer's errors hold no token)
}

// runChild runs the role in spec and returns the exit code. It talks to
// the parent on stdin and stdout only.
func runChild(cfg Config, spec string) int {
	var s childSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, "child: bad spec:", err)
		return 2
	}
	srv, err := cfg.Dial(context.Background(), s.Addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	defer srv.Close()
	stores := make([]Store, len(s.Identities))
	for i, id := range s.Identities {
		if stores[i], err = srv.Store(s.Space, id, s.LockTTL); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 2
		}
	}
	switch s.Role {
	case "fleet":
		return runFleetChild(s, stores)
	case "holder":
		return runHolderChild(s, stores[0])
	}
	fmt.Fprintln(os.Stderr, "child: unknown role", s.Role)
	return 2
}

// runFleetChild: one Transport per identity on one connection, as a
// replica of a service has, each used by Workers goroutines that send
// requests until Duration has passed. It prints {"ready":true}, waits for a
// line on stdin, runs, and prints its childReport.
func runFleetChild(s childSpec, stores []Store) int {
	var rep childReport
	var logouts, refreshes, adopted, refreshErrors atomic.Int64
	cfg := &oauth2.Config{ClientID: s.ClientID, ClientSecret: s.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: s.TokenURL}}
	base := &http.Transport{MaxIdleConnsPerHost: s.Workers * len(stores)}
	defer base.CloseIdleConnections()
	trs := make([]*bearer.Transport, len(stores))
	for i, st := range stores {
		var err error
		trs[i], err = bearer.New(bearer.Config{
			Refresher: bearer.OAuth2(cfg),
			Store:     st,
			Base:      base,
			Leeway:    s.Leeway,
			OnLogout:  func(context.Context, error) { logouts.Add(1) },
			OnRefresh: func(_ context.Context, ev bearer.RefreshEvent) {
				switch {
				case ev.Err != nil:
					refreshErrors.Add(1)
				case ev.Adopted:
					adopted.Add(1)
				case ev.Attempts > 0:
					refreshes.Add(1)
				}
			},
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 2
		}
	}
	fmt.Println(`{"ready":true}`)
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return 2 // the parent went away
	}

	var requests, failures atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(s.Duration)
	ctx := context.Background()
	for _, tr := range trs {
		for range s.Workers {
			wg.Go(func() {
				pace := time.NewTicker(s.Pace) // a bounded load, not a flood
				defer pace.Stop()
				for time.Now().Before(deadline) {
					status, err := Get(ctx, tr, s.APIURL)
					requests.Add(1)
					if err != nil || status != http.StatusOK {
						failures.Add(1)
						mu.Lock()
						if len(rep.Errors) < 5 {
							rep.Errors = append(rep.Errors, fmt.Sprintf("status %d, error %v", status, err))
						}
						mu.Unlock()
					}
					<-pace.C
				}
			})
		}
	}
	wg.Wait()
	rep.Requests, rep.Failures = requests.Load(), failures.Load()
	rep.Logouts, rep.Refreshes, rep.Adopted, rep.RefreshErrors = logouts.Load(), refreshes.Load(), adopted.Load(), refreshErrors.Load()
	out, _ := json.Marshal(rep)
	fmt.Println(string(out))
	return 0
}

// runHolderChild: a Transport whose refresher, once called (holding the
// store's lock), prints {"refreshing":true} and hangs until the parent
// kills the process.
func runHolderChild(s childSpec, st Store) int {
	tr, err := bearer.New(bearer.Config{
		Store:          st,
		RefreshTimeout: s.RefreshTimeout,
		Refresher: bearer.RefresherFunc(func(ctx context.Context, _ *oauth2.Token) (*oauth2.Token, error) {
			fmt.Println(`{"refreshing":true}`)
			<-ctx.Done()
			return nil, ctx.Err()
		}),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	_, err = Get(context.Background(), tr, s.APIURL)
	fmt.Fprintln(os.Stderr, "child: the holder was not killed in time:", err)
	return 1
}

// child is a child process seen from the test.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // its stdout, line by line; closed at EOF
}

// startChild starts the test binary as a child process with spec. It is
// killed at the end of the test if still running.
func startChild(t *testing.T, cfg Config, spec childSpec) *child {
	t.Helper()
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), cfg.childEnv()+"="+string(b))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	done, stop := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			case <-stop: // lines nobody will read
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		stdin.Close()
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		<-done
	})
	return c
}

// line waits for the child's next line of output.
func (c *child) line(t *testing.T, timeout time.Duration) string {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case l, ok := <-c.lines:
		require.True(t, ok, "the child exited without a line")
		return l
	case <-timer.C:
		require.FailNow(t, "no line from the child", "after %v", timeout)
		return ""
	}
}
