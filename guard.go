package bearer

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/store"
)

// This file is where the Transport calls code of the user's: the Refresher,
// the Store and its Locker, the hooks and the log handler. Much of it runs
// on a shared refresh's goroutine, where a panic would end the process: each
// call turns a panic into an error (or, for hooks, a log record).

// storeTimeout bounds each Save and Clear of the store, whatever is left of
// the deadline of the refresh that makes it: a refresh that ends near its
// timeout must still be able to save what it got.
const storeTimeout = 10 * time.Second

// panicError is the error of a call to user code that panicked. It holds no
// part of the panic's value, which may name a token; the log record has it.
type panicError struct{ what string }

func (e *panicError) Error() string { return e.what + " panicked" }

// protect runs fn, turning a panic into a *panicError. known are tokens
// that fn handles, to be kept out of the log record as well as the current
// one.
func (t *Transport) protect(ctx context.Context, what string, fn func() error, known ...*oauth2.Token) (err error) {
	defer func() {
		if r := recover(); r != nil {
			t.logPanic(ctx, what, r, known...)
			err = &panicError{what}
		}
	}()
	return fn()
}

// hook runs one of the Config's hooks; a panic in it is logged (without the
// known tokens) and goes no further.
func (t *Transport) hook(ctx context.Context, name string, fn func(), known ...*oauth2.Token) {
	_ = t.protect(ctx, name, func() error { fn(); return nil }, known...)
}

// logPanic writes one error record with the panic's value, without the
// current token or the known ones, and the stack.
func (t *Transport) logPanic(ctx context.Context, what string, r any, known ...*oauth2.Token) {
	msg := fmt.Sprint(r)
	if s := t.cur.Load(); s != nil {
		known = append(known, s.tok)
	}
	for _, tok := range known {
		if tok == nil {
			continue
		}
		for _, secret := range []string{tok.AccessToken, tok.RefreshToken} {
			if len(secret) >= 4 {
				msg = strings.ReplaceAll(msg, secret, "[redacted]")
			}
		}
	}
	t.log(ctx, slog.LevelError, "bearer: recovered from a panic", "in", what, "panic", msg, "stack", string(debug.Stack()))
}

// log writes a record if there is a Logger. A handler that panics loses
// its record, not the process.
func (t *Transport) log(ctx context.Context, level slog.Level, msg string, args ...any) {
	if t.cfg.Logger == nil {
		return
	}
	defer func() { _ = recover() }()
	t.cfg.Logger.Log(ctx, level, msg, args...)
}

func (t *Transport) logRefresh(ctx context.Context, ev RefreshEvent) {
	if t.cfg.Logger == nil {
		return
	}
	args := []any{"reason", ev.Reason.String(), "duration", ev.Duration, "attempts", ev.Attempts, "adopted", ev.Adopted}
	if ev.Err != nil {
		t.log(ctx, slog.LevelWarn, "bearer: token refresh failed", append(args, "error", ev.Err)...)
		return
	}
	t.log(ctx, slog.LevelDebug, "bearer: token refreshed", append(args, "expiry", ev.Expiry)...)
}

// callRefresher asks the Refresher once, with a copy of base.
func (t *Transport) callRefresher(ctx context.Context, base *oauth2.Token) (tok *oauth2.Token, err error) {
	var cur *oauth2.Token
	if base != nil {
		c := *base
		cur = &c
	}
	err = t.protect(ctx, "Refresher", func() error {
		tok, err = t.cfg.Refresher.Refresh(ctx, cur)
		return err
	}, base)
	return tok, redact(err, base) // a Refresher of the user's may echo the tokens
}

// locker returns the store as a Locker, or nil: derived at each use rather
// than held, which would take a Transport out of its size class.
func (t *Transport) locker() store.Locker {
	l, _ := t.store.(store.Locker)
	return l
}

// lockStore takes the lock of the store, which is a Locker. The unlock it
// returns logs a failure to release instead of returning it.
func (t *Transport) lockStore(ctx context.Context) (unlock func(), err error) {
	var release func() error
	err = t.protect(ctx, "store Lock", func() error {
		release, err = t.locker().Lock(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return func() {
		err := t.protect(ctx, "store unlock", func() error { return release() })
		if err != nil {
			t.log(ctx, slog.LevelWarn, "bearer: unlocking token store failed", "error", err)
		}
	}, nil
}

func (t *Transport) loadStore(ctx context.Context) (tok *oauth2.Token, err error) {
	err = t.protect(ctx, "store Load", func() error {
		tok, err = t.store.Load(ctx)
		return err
	})
	return tok, err
}

// saveStore saves tok under a deadline of its own, keeping ctx's values.
func (t *Transport) saveStore(ctx context.Context, tok *oauth2.Token) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	return t.protect(ctx, "store Save", func() error { return t.store.Save(ctx, tok) }, tok)
}

// clearStore clears the store under a deadline of its own.
func (t *Transport) clearStore(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	return t.protect(ctx, "store Clear", func() error { return t.store.Clear(ctx) })
}
