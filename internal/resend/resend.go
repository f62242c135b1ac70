// Package resend is what a RoundTripper that sends a request a second time
// needs: whether it can, a new copy of its body, and the disposal of the
// answer it drops. The Transport's retry after a 401 and the DPoP
// transport's retry for a nonce both use it.
package resend

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// Replayable reports whether req can be sent again: it has no body, or
// GetBody makes a new one.
func Replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// Body returns a new copy of req's body for another send: req.Body itself
// when it is nil or http.NoBody, else what GetBody makes. req must be
// Replayable.
func Body(req *http.Request) (io.ReadCloser, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req.Body, nil
	}
	return req.GetBody()
}

// DrainTimeout bounds how long Discard waits for a body.
const DrainTimeout = 50 * time.Millisecond

// Discard drains what arrives quickly of a dropped response's body (up to
// 64 KiB, within DrainTimeout), so that its connection can be reused, and
// closes it, exactly once.
func Discard(resp *http.Response) {
	var once sync.Once
	closeIt := func() { once.Do(func() { resp.Body.Close() }) }
	timer := time.AfterFunc(DrainTimeout, closeIt) // ends a Read that stalls
	io.CopyN(io.Discard, resp.Body, 64<<10)
	timer.Stop()
	closeIt()
}
