// Package compat tests bearer under the HTTP clients that programs put a
// RoundTripper in: github.com/hashicorp/go-retryablehttp (above bearer and as
// its Base), github.com/go-resty/resty/v2, resty.dev/v3, the helpers of
// golang.org/x/oauth2, HTTP/2 over TLS, and an OpenAPI-generated style
// client. It is a module of its own so that bearer's users never download
// those libraries; it holds no code of its own, only tests and the examples
// that the README's recipes come from.
//
// Run it with
//
//	cd compat && go test -race -count=1 ./...
package compat
