package compat_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	restyv2 "github.com/go-resty/resty/v2"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	restyv3 "resty.dev/v3"

	"github.com/seamlessauth/bearer"
)

// TestBodiesWithoutGetBody: which common ways of making a request body let
// the Transport send a rejected request again. http.NewRequest sets GetBody
// only for a *bytes.Buffer, *bytes.Reader or *strings.Reader; any other
// reader (a pipe, a reader wrapped in io.NopCloser, a file) has none, and
// then the refresh happens but the 401 is returned, for the caller to send
// again. retryablehttp's own Request and resty v2 buffer every body and set
// GetBody; retryablehttp's StandardClient and resty v3 hand on the reader as
// it is.
func TestBodiesWithoutGetBody(t *testing.T) {
	const payload = `{"n":42}`
	nopCloser := func() io.Reader { return io.NopCloser(bytes.NewReader([]byte(payload))) }
	pipe := func() io.Reader {
		pr, pw := io.Pipe()
		go func() { _, _ = io.WriteString(pw, payload); _ = pw.Close() }()
		return pr
	}
	tests := []struct {
		name         string
		client       func(e *env) poster
		body         func() io.Reader
		wantReplayed bool
	}{
		{"http.NewRequest, strings.Reader", stdPost, func() io.Reader { return strings.NewReader(payload) }, true},
		{"http.NewRequest, bytes.Buffer", stdPost, func() io.Reader { return bytes.NewBufferString(payload) }, true},
		{"http.NewRequest, io.NopCloser", stdPost, nopCloser, false},
		{"http.NewRequest, io.Pipe", stdPost, pipe, false},
		{"retryablehttp.NewRequest, io.NopCloser", retryablePost, nopCloser, true},
		{"retryablehttp.NewRequest, io.Pipe", retryablePost, pipe, true},
		{"retryablehttp StandardClient, io.NopCloser", retryableStandardPost, nopCloser, false},
		{"resty v2 SetBody, io.NopCloser", restyV2Post, nopCloser, true},
		{"resty v2 SetBody, io.Pipe", restyV2Post, pipe, true},
		{"resty v3 SetBody, io.NopCloser", restyV3Post, nopCloser, false},
		{"resty v3 SetBody, bytes.Reader", restyV3Post, func() io.Reader { return bytes.NewReader([]byte(payload)) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			post := tt.client(e)
			e.srv.RevokeAccessTokens()
			before := e.stats()
			status, body, err := readResponse(post(tt.body()))
			require.NoError(t, err)
			assert.EqualValues(t, 1, e.since(before).Refreshes, "the refresh happens either way")
			if tt.wantReplayed {
				assert.Equal(t, http.StatusOK, status)
				assert.JSONEq(t, payload, string(body))
				return
			}
			assert.Equal(t, http.StatusUnauthorized, status, "not replayed: the 401 comes back")
			status, body, err = readResponse(post(tt.body()))
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, status, "sent again, it goes through with the new token")
			assert.JSONEq(t, payload, string(body))
		})
	}
}

// poster POSTs a body to the API's echo endpoint through one client.
type poster func(body io.Reader) (*http.Response, error)

func stdPost(e *env) poster {
	c := e.transport(bearer.Config{}).Client()
	return func(body io.Reader) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodPost, e.srv.APIURL+"/echo", body)
		if err != nil {
			return nil, err
		}
		return c.Do(req)
	}
}

func retryablePost(e *env) poster {
	rc, _ := retryableUnder(e, checkRetry)
	return func(body io.Reader) (*http.Response, error) {
		req, err := retryablehttp.NewRequest(http.MethodPost, e.srv.APIURL+"/echo", body)
		if err != nil {
			return nil, err
		}
		return rc.Do(req)
	}
}

func retryableStandardPost(e *env) poster {
	rc, _ := retryableUnder(e, checkRetry)
	c := rc.StandardClient()
	return func(body io.Reader) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodPost, e.srv.APIURL+"/echo", body)
		if err != nil {
			return nil, err
		}
		return c.Do(req)
	}
}

func restyV2Post(e *env) poster {
	c := restyv2.New().SetTransport(e.transport(bearer.Config{})).SetDoNotParseResponse(true)
	return func(body io.Reader) (*http.Response, error) {
		resp, err := c.R().SetBody(body).Post(e.srv.APIURL + "/echo")
		if err != nil {
			return nil, err
		}
		return resp.RawResponse, nil
	}
}

func restyV3Post(e *env) poster {
	c := restyv3.New().SetTransport(e.transport(bearer.Config{})).SetResponseDoNotParse(true)
	e.t.Cleanup(func() { _ = c.Close() })
	return func(body io.Reader) (*http.Response, error) {
		resp, err := c.R().SetBody(body).Post(e.srv.APIURL + "/echo")
		if err != nil {
			return nil, err
		}
		return resp.RawResponse, nil
	}
}
