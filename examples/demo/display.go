package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// display writes the demo's output. On a terminal it keeps a live progress
// line at the bottom and prints events above it; otherwise it prints the
// progress as plain lines every few seconds. It is safe for concurrent use.
type display struct {
	w   io.Writer
	tty bool

	mu       sync.Mutex
	start    time.Time     // events are timed from here
	progress func() string // renders the live line; nil when none is shown
	line     string        // the live line as last rendered
	shown    bool          // a live line is on the screen
	printed  time.Time     // when the last plain progress line was printed
	stop     chan struct{}
	done     chan struct{}
}

// newDisplay returns a display on w; tty says whether w is a terminal.
func newDisplay(w io.Writer, tty bool) *display {
	return &display{w: w, tty: tty, start: time.Now()}
}

// isTerminal reports whether f is a character device, as a terminal is.
func isTerminal(f *os.File) bool {
	if os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// printf prints a line of its own.
func (d *display) printf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clear()
	fmt.Fprintf(d.w, format, args...)
	d.redraw()
}

// heading prints a section title.
func (d *display) heading(title string) {
	d.printf("\n== %s\n", title)
}

// restart times the events from now on.
func (d *display) restart() {
	d.mu.Lock()
	d.start = time.Now()
	d.mu.Unlock()
}

// event prints a line about something that happened, timed from the start
// of the run.
func (d *display) event(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clear()
	fmt.Fprintf(d.w, "%7.2fs  %s\n", time.Since(d.start).Seconds(), msg)
	d.redraw()
}

// startProgress shows progress() as the live line until stopProgress.
func (d *display) startProgress(progress func() string) {
	every := 2 * time.Second
	if d.tty {
		every = 250 * time.Millisecond
	}
	d.mu.Lock()
	d.progress, d.line = progress, ""
	d.stop, d.done = make(chan struct{}), make(chan struct{})
	d.mu.Unlock()
	go d.tick(every, d.stop, d.done)
}

func (d *display) tick(every time.Duration, stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			d.mu.Lock()
			d.line = d.render()
			if d.tty {
				d.clear()
				d.redraw()
			} else {
				fmt.Fprintf(d.w, "%s\n", d.line)
				d.printed = time.Now()
			}
			d.mu.Unlock()
		}
	}
}

// stopProgress prints the live line a last time, as a plain line, unless
// the same line was printed a moment ago.
func (d *display) stopProgress() {
	close(d.stop)
	<-d.done
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clear()
	if d.tty || time.Since(d.printed) > 500*time.Millisecond {
		fmt.Fprintf(d.w, "%s\n", d.render())
	}
	d.progress, d.line = nil, ""
}

// clear erases the live line; the caller holds d.mu.
func (d *display) clear() {
	if d.shown {
		fmt.Fprint(d.w, "\r\x1b[K")
		d.shown = false
	}
}

// redraw prints the live line again on a terminal; the caller holds d.mu.
func (d *display) redraw() {
	if d.tty && d.line != "" {
		fmt.Fprint(d.w, fit(d.line, width()))
		d.shown = true
	}
}

// render is the progress line, timed like the events; the caller holds d.mu.
func (d *display) render() string {
	return fmt.Sprintf("%7.2fs  %s", time.Since(d.start).Seconds(), d.progress())
}

// width is the terminal's width as the shell exports it, or 80.
func width() int {
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 20 {
		return n
	}
	return 80
}

// fit cuts s to fewer than w characters, so that the live line never wraps
// (a wrapped line cannot be erased with a carriage return).
func fit(s string, w int) string {
	if r := []rune(s); len(r) >= w {
		return string(r[:w-2]) + "…"
	}
	return s
}

// count renders n with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
