package otelbearer

import (
	"errors"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamlessauth/bearer"
)

// The attributes of this package. Their values come from short fixed lists
// (see the package documentation), never from a token or an error message.
const (
	reasonKey    = attribute.Key("bearer.refresh.reason")
	outcomeKey   = attribute.Key("bearer.refresh.outcome")
	attemptsKey  = attribute.Key("bearer.refresh.attempts")
	errorCodeKey = attribute.Key("bearer.refresh.error_code")
)

// The values of bearer.refresh.outcome.
const (
	outcomeOK        = "ok"
	outcomeAdopted   = "adopted"
	outcomeTransient = "transient_failure"
	outcomePermanent = "permanent_failure"
)

// other is the value of an attribute that is none of its known values, as
// OpenTelemetry spells it for error.type.
const other = "_OTHER"

// knownCodes are the token endpoint error codes reported as they are: RFC
// 6749 §5.2, RFC 8628 §3.5 and RFC 9449 §5 and §8, and invalid_token (RFC
// 6750 §3.1), which some endpoints answer.
var knownCodes = map[string]bool{
	"invalid_request":         true,
	"invalid_client":          true,
	"invalid_grant":           true,
	"unauthorized_client":     true,
	"unsupported_grant_type":  true,
	"invalid_scope":           true,
	"server_error":            true,
	"temporarily_unavailable": true,
	"access_denied":           true,
	"authorization_pending":   true,
	"slow_down":               true,
	"expired_token":           true,
	"invalid_dpop_proof":      true,
	"use_dpop_nonce":          true,
	"invalid_token":           true,
}

// facts are what the telemetry says about one refresh.
type facts struct {
	reason  string
	outcome string
	ev      bearer.RefreshEvent
	re      *bearer.RefreshError // nil on success
}

func describe(ev bearer.RefreshEvent) facts {
	f := facts{reason: ev.Reason.String(), ev: ev}
	switch {
	case ev.Err == nil && ev.Adopted:
		f.outcome = outcomeAdopted
	case ev.Err == nil:
		f.outcome = outcomeOK
	default:
		f.outcome = outcomeTransient
		if errors.As(ev.Err, &f.re) && f.re.Permanent {
			f.outcome = outcomePermanent
		}
	}
	return f
}

// metricSet is the attribute set of the refresh metrics.
func (f facts) metricSet() attribute.Set {
	if f.ev.Err == nil {
		return attribute.NewSet(reasonKey.String(f.reason), outcomeKey.String(f.outcome))
	}
	return attribute.NewSet(reasonKey.String(f.reason), outcomeKey.String(f.outcome), errorType(f.re))
}

// end records the outcome on the refresh span and ends it.
func (f facts) end(span trace.Span) {
	span.SetAttributes(outcomeKey.String(f.outcome), attemptsKey.Int(f.ev.Attempts))
	if f.ev.Err != nil {
		span.SetAttributes(errorType(f.re))
		if f.re != nil && f.re.StatusCode != 0 {
			span.SetAttributes(semconv.HTTPResponseStatusCode(f.re.StatusCode))
		}
		if f.re != nil && f.re.Code != "" {
			span.SetAttributes(errorCodeKey.String(code(f.re.Code)))
		}
		span.SetStatus(codes.Error, f.outcome)
	}
	span.End()
}

// errorType is the error.type of a failed refresh: a known OAuth2 error
// code, else the HTTP status, else "timeout", else "_OTHER".
func errorType(re *bearer.RefreshError) attribute.KeyValue {
	switch {
	case re == nil:
		return semconv.ErrorTypeOther
	case knownCodes[re.Code]:
		return semconv.ErrorTypeKey.String(re.Code)
	case re.StatusCode != 0:
		return semconv.ErrorTypeKey.String(strconv.Itoa(re.StatusCode))
	case re.Timeout():
		return semconv.ErrorTypeKey.String("timeout")
	}
	return semconv.ErrorTypeOther
}

// code is an OAuth2 error code as reported: itself if it is a known one.
func code(c string) string {
	if knownCodes[c] {
		return c
	}
	return other
}
