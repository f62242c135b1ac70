package bearertest

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Fault describes how to spoil one request. The steps apply in order: Delay,
// then the first of Reset, Truncate or Status that is set. A Fault with none
// of those set (Delay alone) lets the request be handled normally afterwards.
type Fault struct {
	// Delay waits this long first, or until the request context ends or the
	// server is closed (then the request is abandoned).
	Delay time.Duration

	// Status answers this status with Body and Header instead of handling the
	// request. Zero means no status answer.
	Status int
	Body   string
	Header http.Header

	// Reset hijacks the connection and closes it with no response, so the
	// client sees a connection reset or an EOF. net/http's client may retry
	// an idempotent request (GET) sent on a reused connection once on its own;
	// that retry is a new request and takes the next fault, if any.
	Reset bool

	// Truncate sends the Status (200 if zero) and Header with a Content-Length
	// larger than the Body written (a partial JSON object if Body is empty),
	// then closes the connection: reading the body fails with
	// io.ErrUnexpectedEOF.
	Truncate bool
}

// truncatedBody is the start of a token answer that never completes.
const truncatedBody = `{"token_type":"Bearer","expires_in":3600,"access_tok`

// InvalidGrant returns a Fault answering 400 {"error":"invalid_grant",...},
// the token endpoint's word for a dead refresh token.
func InvalidGrant() Fault {
	return jsonFault(http.StatusBadRequest,
		`{"error":"invalid_grant","error_description":"bearertest: injected invalid_grant"}`)
}

// ServerError returns a Fault answering code with a small JSON body
// {"error":"server_error",...}.
func ServerError(code int) Fault {
	return jsonFault(code,
		`{"error":"server_error","error_description":"bearertest: injected status `+strconv.Itoa(code)+`"}`)
}

// Malformed returns a Fault answering 200 application/json with a body that
// is not valid JSON.
func Malformed() Fault {
	return jsonFault(http.StatusOK, `{"access_token": "unterminated`)
}

func jsonFault(status int, body string) Fault {
	return Fault{
		Status: status,
		Body:   body,
		Header: http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}},
	}
}

// FailToken makes the next n requests to /token and /refresh get fault f;
// n < 0 means every request until [Server.ClearFaults]. Calls queue up:
// FailToken(1, a) then FailToken(2, b) gives a, b, b, then normal answers.
// A fault queued after one with n < 0 is never reached. n == 0 does nothing.
func (s *Server) FailToken(n int, f Fault) { s.tokenFaults.add(n, f) }

// FailAPI is [Server.FailToken] for /api.
func (s *Server) FailAPI(n int, f Fault) { s.apiFaults.add(n, f) }

// ClearFaults removes every queued fault, for the token endpoints, the
// revocation endpoint and the API.
func (s *Server) ClearFaults() {
	s.tokenFaults.clear()
	s.apiFaults.clear()
	s.revokeFaults.clear()
}

type queuedFault struct {
	n int // remaining uses; < 0: unlimited
	f Fault
}

// faultQueue hands out queued faults, one per request.
type faultQueue struct {
	pending atomic.Bool // fast path: no lock while no fault is queued
	mu      sync.Mutex
	q       []queuedFault
}

func (q *faultQueue) add(n int, f Fault) {
	if n == 0 {
		return
	}
	f.Header = f.Header.Clone()
	q.mu.Lock()
	q.q = append(q.q, queuedFault{n: n, f: f})
	q.pending.Store(true)
	q.mu.Unlock()
}

// next takes the fault for one request, if any.
func (q *faultQueue) next() (Fault, bool) {
	if !q.pending.Load() {
		return Fault{}, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.q) == 0 {
		return Fault{}, false
	}
	head := &q.q[0]
	f := head.f
	if head.n > 0 {
		head.n--
		if head.n == 0 {
			q.q = q.q[1:]
			q.pending.Store(len(q.q) > 0)
		}
	}
	return f, true
}

func (q *faultQueue) clear() {
	q.mu.Lock()
	q.q = nil
	q.pending.Store(false)
	q.mu.Unlock()
}

// applyFault carries out f and reports whether it answered the request, in
// which case the handler must not go on.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	if !s.wait(r, f.Delay) {
		abandon(w)
		return true
	}
	switch {
	case f.Reset:
		resetConn(w)
	case f.Truncate:
		truncate(w, f)
	case f.Status != 0:
		copyHeader(w.Header(), f.Header)
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, f.Body)
	default:
		return false
	}
	return true
}

// abandon answers a request whose wait was cut short: the client has gone,
// or the server is closing.
func abandon(w http.ResponseWriter) {
	http.Error(w, "bearertest: request abandoned", http.StatusServiceUnavailable)
}

// resetConn closes the connection under the request without answering,
// with a TCP reset where possible.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // the server closes the connection silently
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// truncate writes a response shorter than its Content-Length, then closes
// the connection.
func truncate(w http.ResponseWriter, f Fault) {
	body := f.Body
	if body == "" {
		body = truncatedBody
	}
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	h := w.Header()
	copyHeader(h, f.Header)
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)+64))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
}
