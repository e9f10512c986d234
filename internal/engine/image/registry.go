package image

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// RemoteOptions configure how cove talks to registries.
type RemoteOptions struct {
	// Insecure lists registries (host[:port]) reached without TLS
	// verification and over plain HTTP (--tls-verify=false marks the one
	// in the command's reference). 127.0.0.1, ::1 and localhost always may
	// use HTTP.
	Insecure []string
	// Keychain resolves credentials; nil means anonymous plus Docker's config.
	Keychain authn.Keychain
	// Jobs is how many blobs are transferred at once (default 6).
	Jobs int
	// Progress, if set, receives transfer events.
	Progress func(Event)
}

func (o RemoteOptions) insecure(registry string) bool {
	return slices.Contains(o.Insecure, registry)
}

func (o RemoteOptions) jobs() int {
	if o.Jobs > 0 {
		return o.Jobs
	}
	return 6
}

func (o RemoteOptions) keychain() authn.Keychain {
	if o.Keychain != nil {
		return o.Keychain
	}
	return authn.DefaultKeychain
}

func (o RemoteOptions) emit(e Event) {
	if o.Progress != nil {
		o.Progress(e)
	}
}

func nameOpts(registry string, o RemoteOptions) []name.Option {
	opts := []name.Option{name.StrictValidation}
	if o.insecure(registry) {
		opts = append(opts, name.Insecure)
	}
	return opts
}

// loopback reports whether host[:port] names this machine.
func loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// baseTransport is the HTTP transport under the registry auth layer: TLS
// verification off only for insecure registries, and plain HTTP refused
// for any host that is neither insecure nor loopback (go-containerregistry
// would otherwise also use HTTP for private-network addresses).
func (o RemoteOptions) baseTransport(registry string) http.RoundTripper {
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		// Layers are compressed already; let the body stream through untouched.
		DisableCompression: true,
	}
	if o.insecure(registry) {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with --tls-verify=false
	}
	return &httpPolicy{next: t, allowHTTP: func(host string) bool { return o.insecure(host) || loopback(host) }}
}

type httpPolicy struct {
	next      http.RoundTripper
	allowHTTP func(host string) bool
}

func (p *httpPolicy) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !p.allowHTTP(req.URL.Host) {
		return nil, fmt.Errorf("refusing plain HTTP to %s: mark the registry insecure (--tls-verify=false) to allow it", req.URL.Host)
	}
	return p.next.RoundTrip(req)
}
