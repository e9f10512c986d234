package image

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPullWithBasicAndBearerAuth(t *testing.T) {
	for _, scheme := range []string{"basic", "bearer"} {
		t.Run(scheme, func(t *testing.T) {
			tr := newTestRegistry(t)
			tr.push(t, "private/app:v1", 20_000, 1)
			tr.setFault(func(w http.ResponseWriter, r *http.Request) bool {
				user, pass, ok := r.BasicAuth()
				goodBasic := ok && user == "alice" && pass == "s3cret"
				if r.URL.Path == "/token" {
					if !goodBasic {
						w.WriteHeader(http.StatusUnauthorized)
						return true
					}
					w.Header().Set("Content-Type", "application/json")
					w.Write([]byte(`{"token":"tok-123"}`))
					return true
				}
				if scheme == "basic" && goodBasic || scheme == "bearer" && r.Header.Get("Authorization") == "Bearer tok-123" {
					return false
				}
				if scheme == "basic" {
					w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				} else {
					w.Header().Set("WWW-Authenticate", `Bearer realm="`+tr.srv.URL+`/token",service="test"`)
				}
				w.WriteHeader(http.StatusUnauthorized)
				return true
			})
			s, _ := newTestStore(t)
			auth := &Auth{Path: filepath.Join(t.TempDir(), "auth.json")}
			opts := PullOptions{RemoteOptions: RemoteOptions{Keychain: auth}}
			ctx := context.Background()
			if _, err := s.Pull(ctx, tr.host+"/private/app:v1", opts); err == nil {
				t.Fatal("anonymous pull from a private registry succeeded")
			}
			if err := s.Login(ctx, auth, tr.host, "alice", "wrong", RemoteOptions{}); err == nil {
				t.Fatal("login with a wrong password succeeded")
			}
			if _, err := os.Stat(auth.Path); err == nil {
				t.Fatal("credentials stored after a failed login")
			}
			if err := s.Login(ctx, auth, tr.host, "alice", "s3cret", RemoteOptions{}); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(auth.Path)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("auth file mode %v, %v", st.Mode(), err)
			}
			if _, err := s.Pull(ctx, tr.host+"/private/app:v1", opts); err != nil {
				t.Fatal(err)
			}
			if ok, err := auth.Remove(tr.host); !ok || err != nil {
				t.Fatalf("logout: %v %v", ok, err)
			}
		})
	}
}

func TestPlainHTTPOnlyForLoopbackOrInsecure(t *testing.T) {
	o := RemoteOptions{}
	rt := o.baseTransport("10.1.2.3:5000").(*httpPolicy)
	req, _ := http.NewRequest("GET", "http://10.1.2.3:5000/v2/", nil)
	if _, err := rt.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "refusing plain HTTP") {
		t.Fatalf("plain HTTP to a private address allowed: %v", err)
	}
	for _, h := range []string{"127.0.0.1:5000", "localhost:5000", "[::1]:5000"} {
		if !rt.allowHTTP(h) {
			t.Errorf("loopback %s refused", h)
		}
	}
	o.Insecure = []string{"10.1.2.3:5000"}
	if !o.baseTransport("10.1.2.3:5000").(*httpPolicy).allowHTTP("10.1.2.3:5000") {
		t.Error("registry marked insecure refused")
	}
}

func TestParseReference(t *testing.T) {
	cases := map[string]string{
		"busybox":                    "docker.io/library/busybox:latest",
		"library/busybox:1.36":       "docker.io/library/busybox:1.36",
		"user/app":                   "docker.io/user/app:latest",
		"index.docker.io/user/app:v": "docker.io/user/app:v",
		"registry:5000/ns/name:tag":  "registry:5000/ns/name:tag",
		"localhost/foo":              "localhost/foo:latest",
		"127.0.0.1:5000/a/b/c@sha256:" + strings.Repeat("ab", 32): "127.0.0.1:5000/a/b/c@sha256:" + strings.Repeat("ab", 32),
	}
	for in, want := range cases {
		r, err := ParseReference(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseReference(%q) = %q, %v; want %q", in, r.String(), err, want)
		}
	}
	for _, bad := range []string{"", "UPPER/case", "a@sha256:zz", "x:bad tag", "a//b", "-lead"} {
		if _, err := ParseReference(bad); err == nil {
			t.Errorf("ParseReference(%q) accepted", bad)
		}
	}
}
