package bearer_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/store"
)

// panicCaseEnv names the case that TestPanicChild runs in a subprocess.
const panicCaseEnv = "BEARER_PANIC_CASE"

// panicCases each make one piece of user code panic during a refresh. The
// panic values name the refresh token, which must not reach the error.
var panicCases = map[string]func(cfg *bearer.Config){
	"Refresher": func(cfg *bearer.Config) {
		cfg.Refresher = bearer.RefresherFunc(func(_ context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
			panic("refresher broke holding " + cur.RefreshToken)
		})
	},
	"Store.Load": func(cfg *bearer.Config) {
		cfg.Store = panicStore{Memory: cfg.Store.(*store.Memory), in: "Load", loads: new(atomic.Int32)}
	},
	"Store.Save": func(cfg *bearer.Config) { cfg.Store = panicStore{Memory: cfg.Store.(*store.Memory), in: "Save"} },
	"Locker":     func(cfg *bearer.Config) { cfg.Store = panicStore{Memory: cfg.Store.(*store.Memory), in: "Lock"} },
	"OnRefresh": func(cfg *bearer.Config) {
		cfg.OnRefresh = func(context.Context, bearer.RefreshEvent) { panic("hook broke holding refresh-0") }
	},
	"OnLogout": func(cfg *bearer.Config) {
		cfg.Refresher = bearer.RefresherFunc(func(context.Context, *oauth2.Token) (*oauth2.Token, error) {
			return nil, bearer.Permanent(errors.New("revoked"))
		})
		cfg.OnLogout = func(context.Context, error) { panic("hook broke holding refresh-0") }
	},
	"log handler": func(cfg *bearer.Config) { cfg.Logger = slog.New(panicHandler{}) },
}

// panicStore is a Memory that panics in one of its methods: Load panics
// from its second call on, after the Transport's first read.
type panicStore struct {
	*store.Memory
	in    string
	loads *atomic.Int32
}

func (s panicStore) Load(ctx context.Context) (*oauth2.Token, error) {
	tok, err := s.Memory.Load(ctx)
	if s.in == "Load" && s.loads.Add(1) > 1 {
		panic("store broke holding " + tok.RefreshToken)
	}
	return tok, err
}

func (s panicStore) Save(ctx context.Context, tok *oauth2.Token) error {
	if s.in == "Save" {
		panic("store broke holding " + tok.RefreshToken)
	}
	return s.Memory.Save(ctx, tok)
}

func (s panicStore) Lock(ctx context.Context) (func() error, error) {
	if s.in == "Lock" {
		panic("lock broke")
	}
	return s.Memory.Lock(ctx)
}

type panicHandler struct{}

func (panicHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (panicHandler) Handle(context.Context, slog.Record) error { panic("log handler broke") }
func (h panicHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h panicHandler) WithGroup(string) slog.Handler           { return h }

// TestPanicsInUserCode runs each panic case in a subprocess, since a panic
// that escapes a shared refresh ends the whole process: the child must
// finish its checks and exit cleanly.
func TestPanicsInUserCode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	for name := range panicCases {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestPanicChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), panicCaseEnv+"="+name)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "the child died:\n%s", out)
			assert.Contains(t, string(out), "--- PASS: TestPanicChild")
		})
	}
}

// TestPanicChild is the subprocess of TestPanicsInUserCode.
func TestPanicChild(t *testing.T) {
	name := os.Getenv(panicCaseEnv)
	if name == "" {
		t.Skip("run by TestPanicsInUserCode")
	}
	var logs bytes.Buffer
	clk := newClock()
	cfg := bearer.Config{
		Refresher: &countingRefresher{ttl: time.Hour, now: clk.Now},
		Store:     store.NewMemory(&oauth2.Token{AccessToken: "access-0", RefreshToken: "refresh-0", Expiry: clk.Now().Add(time.Hour)}),
		Base:      &fakeBase{respond: status(200)},
		Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
	}
	panicCases[name](&cfg)
	tr := newTransport(t, cfg, nil)
	bearer.SetClock(tr, clk.Now)
	_, err := tr.Token(context.Background())
	require.NoError(t, err)

	// In the background: the stale token is still sent.
	clk.Advance(time.Hour - 20*time.Second)
	code, err := get(t, tr)
	require.NoError(t, err)
	assert.Equal(t, 200, code)
	bearer.Settle(tr)

	// Waited for, the token having expired (with time left, a failed refresh
	// leaves the current token in use, and no error to look at): the refresh
	// fails with an error, or succeeds if the panic was only in a hook or the
	// save; the process goes on either way.
	clk.Advance(21 * time.Second)
	_, err = tr.Token(context.Background())
	if err != nil {
		assert.NotContains(t, err.Error(), "refresh-")
		if name != "OnLogout" {
			_, isRefresh := isRefreshError(err)
			assert.True(t, isRefresh, "a *RefreshError: %v", err)
			assert.Contains(t, err.Error(), "panicked")
		}
	}
	if name != "log handler" {
		assert.Contains(t, logs.String(), "level=ERROR")
		assert.Contains(t, logs.String(), "broke")
		assert.Contains(t, logs.String(), "goroutine", "the stack is logged")
		assert.NotContains(t, logs.String(), "refresh-", "the panic value is logged without any token")
	}
}
