package bearertest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/seamlessauth/bearer/bearertest"
)

func BenchmarkAPI(b *testing.B) {
	srv := bearertest.NewServer(bearertest.Options{})
	defer srv.Close()
	auth := "Bearer " + srv.Issue().AccessToken
	client := srv.Client()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, srv.APIURL, nil)
			req.Header.Set("Authorization", auth)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func BenchmarkRefresh(b *testing.B) {
	srv := bearertest.NewServer(bearertest.Options{})
	defer srv.Close()
	body := `{"token":"` + srv.Issue().RefreshToken + `"}`
	client := srv.Client()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(srv.RefreshURL, "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
