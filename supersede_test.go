package bearer_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/store"
)

// TestLoginStateChangesDuringRefresh: a Logout or SetToken that happens
// while a refresh is under way wins, in memory and in the store. A Logout
// takes effect at once and the refresh's token is dropped; a SetToken waits
// for the store lock, which the refresh holds, and then overwrites its
// token.
func TestLoginStateChangesDuringRefresh(t *testing.T) {
	tests := []struct {
		name      string
		change    func(t *testing.T, tr *bearer.Transport)
		wantErr   error
		wantStore string // access token left in the store; "" for none
		wantUsed  bool   // whether the refresh's token may have been sent
	}{
		{name: "Logout", wantErr: bearer.ErrLoggedOut, change: func(t *testing.T, tr *bearer.Transport) {
			require.NoError(t, tr.Logout(context.Background()))
		}},
		{name: "SetToken", wantStore: "fresh-login", wantUsed: true, change: func(t *testing.T, tr *bearer.Transport) {
			require.NoError(t, tr.SetToken(context.Background(), &oauth2.Token{AccessToken: "fresh-login", RefreshToken: "r"}))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entered := make(chan struct{})
			release := make(chan struct{})
			ref := bearer.RefresherFunc(func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
				close(entered)
				<-release
				return &oauth2.Token{AccessToken: "from-refresh", RefreshToken: "r2"}, nil
			})
			base := &fakeBase{respond: func(r *http.Request) (*http.Response, error) {
				if r.Header.Get("Authorization") == "Bearer access-0" {
					return answer(401), nil
				}
				return answer(200), nil
			}}
			st := store.NewMemory(tok1)
			locking := make(chan struct{}, 2)
			tr := newTransport(t, bearer.Config{Refresher: ref, Base: base, Store: &signalLocker{Memory: st, locking: locking}}, nil)

			done := make(chan error, 1)
			go func() {
				resp, err := tr.Client().Get("https://api.example.com/")
				if err == nil {
					resp.Body.Close()
				}
				done <- err
			}()
			<-entered
			<-locking // the refresh's
			changed := make(chan struct{})
			go func() {
				defer close(changed)
				tt.change(t, tr)
			}()
			<-locking // the change's: it waits for the refresh to unlock
			close(release)
			err := <-done
			<-changed

			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			} else {
				assert.NoError(t, err)
			}
			stored, lerr := st.Load(context.Background())
			if tt.wantStore == "" {
				assert.ErrorIs(t, lerr, store.ErrNotFound, "the refresh must not save over a logout")
			} else {
				require.NoError(t, lerr)
				assert.Equal(t, tt.wantStore, stored.AccessToken, "the refresh must not save over a login")
			}
			for _, s := range base.requests() {
				if !tt.wantUsed {
					assert.NotEqual(t, "Bearer from-refresh", s.auth)
				}
			}
			if tt.wantStore != "" {
				got, err := tr.Token(context.Background())
				require.NoError(t, err)
				assert.Equal(t, tt.wantStore, got.AccessToken)
			}
		})
	}
}

// signalLocker is a Memory whose Lock says on locking that it was called.
type signalLocker struct {
	*store.Memory
	locking chan<- struct{}
}

func (s *signalLocker) Lock(ctx context.Context) (func() error, error) {
	s.locking <- struct{}{}
	return s.Memory.Lock(ctx)
}
