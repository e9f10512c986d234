package image

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Auth is a credentials file in Docker's config.json format
// ({"auths": {"registry": {"auth": base64(user:password)}}}), mode 0600.
type Auth struct {
	Path string
}

// DefaultAuthFile is <root>/auth.json for root, ~/.config/cove/auth.json otherwise.
func DefaultAuthFile(root string) string {
	if os.Geteuid() != 0 {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, ".config", "cove", "auth.json")
		}
	}
	return filepath.Join(root, "auth.json")
}

type authFile struct {
	Auths map[string]authEntry `json:"auths"`
}

type authEntry struct {
	Auth string `json:"auth"`
}

// authKey is how a registry is named in the file: Docker Hub as docker.io.
func authKey(registry string) string {
	switch registry {
	case "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/":
		return DefaultDomain
	}
	return registry
}

func (a *Auth) read() (authFile, error) {
	f := authFile{Auths: map[string]authEntry{}}
	b, err := os.ReadFile(a.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read credentials: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("credentials file %s: %w", a.Path, err)
	}
	if f.Auths == nil {
		f.Auths = map[string]authEntry{}
	}
	return f, nil
}

func (a *Auth) write(f authFile) error {
	b, err := json.MarshalIndent(f, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(a.Path), 0o700); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(a.Path), ".auth-*")
	if err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write credentials: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write credentials: %w", err)
	}
	tmp.Close()
	if err := os.Rename(tmp.Name(), a.Path); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	return nil
}

// Lookup returns the stored user and password for registry.
func (a *Auth) Lookup(registry string) (user, pass string, ok bool, err error) {
	f, err := a.read()
	if err != nil {
		return "", "", false, err
	}
	e, found := f.Auths[authKey(registry)]
	if !found {
		return "", "", false, nil
	}
	raw, err := base64.StdEncoding.DecodeString(e.Auth)
	if err != nil {
		return "", "", false, fmt.Errorf("credentials for %s: %w", registry, err)
	}
	user, pass, _ = strings.Cut(string(raw), ":")
	return user, pass, true, nil
}

// Store saves credentials for registry.
func (a *Auth) Store(registry, user, pass string) error {
	f, err := a.read()
	if err != nil {
		return err
	}
	f.Auths[authKey(registry)] = authEntry{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}
	return a.write(f)
}

// Remove deletes the credentials for registry; it reports whether there were any.
func (a *Auth) Remove(registry string) (bool, error) {
	f, err := a.read()
	if err != nil {
		return false, err
	}
	if _, ok := f.Auths[authKey(registry)]; !ok {
		return false, nil
	}
	delete(f.Auths, authKey(registry))
	return true, a.write(f)
}

// Resolve implements authn.Keychain: cove's own file first, then Docker's
// and Podman's configs (authn.DefaultKeychain), else anonymous.
func (a *Auth) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if a != nil && a.Path != "" {
		user, pass, ok, err := a.Lookup(r.RegistryStr())
		if err != nil {
			return nil, err
		}
		if ok {
			return &authn.Basic{Username: user, Password: pass}, nil
		}
	}
	return authn.DefaultKeychain.Resolve(r)
}

// Login checks user and password against registry (a token round trip for
// bearer registries, a ping with basic auth otherwise) and stores them.
func (s *Store) Login(ctx context.Context, auth *Auth, registry, user, pass string, opts RemoteOptions) error {
	ref, err := ParseReference(registry + "/cove/login")
	if err != nil {
		return fmt.Errorf("login: bad registry %q", registry)
	}
	reg, err := name.NewRegistry(ref.Domain, nameOpts(ref.Domain, opts)...)
	if err != nil {
		return fmt.Errorf("login %s: %w", registry, err)
	}
	basic := &authn.Basic{Username: user, Password: pass}
	rt, err := transport.NewWithContext(ctx, reg, basic, opts.baseTransport(ref.Domain), nil)
	if err != nil {
		return fmt.Errorf("login to %s: %w", ref.Domain, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return fmt.Errorf("login to %s: %w", ref.Domain, err)
	}
	resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return fmt.Errorf("login to %s: %w", ref.Domain, err)
	}
	return auth.Store(ref.Domain, user, pass)
}
