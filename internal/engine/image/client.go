package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"runtime"
	"strings"
	"time"

	"cove/internal/engine/content"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// client talks the distribution protocol for one repository. Auth (basic,
// bearer tokens) comes from go-containerregistry's transport; requests and
// verification are ours, so blob downloads can resume with Range requests
// and stream into the content store.
type client struct {
	ref  Reference
	repo name.Repository
	http *http.Client
	base string // scheme://host/v2/<repository>
	opts RemoteOptions
	auth authn.Authenticator
}

func newClient(ctx context.Context, ref Reference, opts RemoteOptions, push bool) (*client, error) {
	repo, err := name.NewRepository(ref.Repository(), nameOpts(ref.Domain, opts)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	auth, err := authn.Resolve(ctx, opts.keychain(), repo)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", ref.Domain, err)
	}
	scope := transport.PullScope
	if push {
		scope = transport.PushScope
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, opts.baseTransport(ref.Domain), []string{repo.Scope(scope)})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", ref.Domain, err)
	}
	return &client{
		ref:  ref,
		repo: repo,
		http: &http.Client{Transport: rt},
		base: repo.Registry.Scheme() + "://" + repo.RegistryStr() + "/v2/" + repo.RepositoryStr(),
		opts: opts,
		auth: auth,
	}, nil
}

var manifestTypes = []string{MediaTypeOCIManifest, MediaTypeOCIIndex, MediaTypeDockerManifest, MediaTypeDockerList}

func isIndex(mt string) bool    { return mt == MediaTypeOCIIndex || mt == MediaTypeDockerList }
func isManifest(mt string) bool { return mt == MediaTypeOCIManifest || mt == MediaTypeDockerManifest }

// manifestMediaType decides a manifest's media type from the response's
// Content-Type and the document's own mediaType field; they must agree.
func manifestMediaType(header string, b []byte) (string, error) {
	ct, _, _ := mime.ParseMediaType(header)
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Layers    json.RawMessage `json:"layers"`
		Schema    int             `json:"schemaVersion"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return "", fmt.Errorf("manifest is not JSON: %w", err)
	}
	generic := ct == "" || ct == "application/json" || ct == "text/plain" || ct == "application/octet-stream"
	mt := ct
	switch {
	case generic && probe.MediaType != "":
		mt = probe.MediaType
	case generic && probe.Manifests != nil:
		mt = MediaTypeOCIIndex
	case generic && probe.Layers != nil:
		mt = MediaTypeOCIManifest
	case probe.MediaType != "" && probe.MediaType != ct:
		return "", fmt.Errorf("wrong media type: served as %q but the document says %q", ct, probe.MediaType)
	}
	if !isIndex(mt) && !isManifest(mt) {
		return "", fmt.Errorf("unsupported manifest media type %q", mt)
	}
	if probe.Schema != 2 {
		return "", fmt.Errorf("unsupported manifest schemaVersion %d", probe.Schema)
	}
	return mt, nil
}

// fetchManifest GETs a manifest or index by tag or digest and verifies it.
func (c *client) fetchManifest(ctx context.Context, tagOrDigest string) (b []byte, mt, dgst string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/manifests/"+tagOrDigest, nil)
	if err != nil {
		return nil, "", "", err
	}
	req.Header.Set("Accept", strings.Join(manifestTypes, ", "))
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, "", "", fmt.Errorf("fetch manifest %s: %w", tagOrDigest, err)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return nil, "", "", fmt.Errorf("fetch manifest %s: %w", tagOrDigest, err)
	}
	b, err = io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return nil, "", "", fmt.Errorf("fetch manifest %s: %w", tagOrDigest, err)
	}
	if len(b) > maxManifestSize {
		return nil, "", "", fmt.Errorf("manifest %s: larger than %d bytes", tagOrDigest, maxManifestSize)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != int64(len(b)) {
		return nil, "", "", fmt.Errorf("manifest %s: size mismatch: %d bytes, Content-Length %d", tagOrDigest, len(b), resp.ContentLength)
	}
	dgst = content.Digest(b)
	if strings.HasPrefix(tagOrDigest, "sha256:") && dgst != tagOrDigest {
		return nil, "", "", fmt.Errorf("manifest %s: wrong digest: content hashes to %s", tagOrDigest, dgst)
	}
	if h := resp.Header.Get("Docker-Content-Digest"); strings.HasPrefix(h, "sha256:") && h != dgst {
		return nil, "", "", fmt.Errorf("manifest %s: wrong digest: registry says %s, content hashes to %s", tagOrDigest, h, dgst)
	}
	mt, err = manifestMediaType(resp.Header.Get("Content-Type"), b)
	if err != nil {
		return nil, "", "", fmt.Errorf("manifest %s: %w", tagOrDigest, err)
	}
	return b, mt, dgst, nil
}

// resolved is a manifest picked for a platform.
type resolved struct {
	manifest  []byte
	mediaType string
	digest    string
	index     []byte // the index it came from, if any
	indexType string
	indexDgst string
}

// resolve fetches tagOrDigest and, for an index, the manifest for platform,
// following nested indexes up to maxIndexDepth and refusing loops.
func (c *client) resolve(ctx context.Context, tagOrDigest string, platform ocispec.Platform) (*resolved, error) {
	res := &resolved{}
	seen := map[string]bool{}
	want := ocispec.Descriptor{Size: -1}
	for depth := 0; ; depth++ {
		b, mt, d, err := c.fetchManifest(ctx, tagOrDigest)
		if err != nil {
			return nil, err
		}
		if want.Size >= 0 {
			if int64(len(b)) != want.Size {
				return nil, fmt.Errorf("manifest %s: size mismatch: %d bytes, index says %d", d, len(b), want.Size)
			}
			if want.MediaType != "" && want.MediaType != mt {
				return nil, fmt.Errorf("manifest %s: wrong media type %q, index says %q", d, mt, want.MediaType)
			}
		}
		if seen[d] {
			return nil, fmt.Errorf("index %s: loop: it refers back to itself", d)
		}
		seen[d] = true
		if isManifest(mt) {
			res.manifest, res.mediaType, res.digest = b, mt, d
			return res, nil
		}
		if depth >= maxIndexDepth {
			return nil, fmt.Errorf("index %s: nested deeper than %d levels", d, maxIndexDepth)
		}
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("index %s: %w", d, err)
		}
		if res.index == nil {
			res.index, res.indexType, res.indexDgst = b, mt, d
		}
		child, err := pickPlatform(idx, platform)
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", d, err)
		}
		if seen[child.Digest.String()] {
			return nil, fmt.Errorf("index %s: loop: it refers back to %s", d, child.Digest)
		}
		want = child
		tagOrDigest = child.Digest.String()
		if err := content.ValidDigest(tagOrDigest); err != nil {
			return nil, fmt.Errorf("index %s: %w", d, err)
		}
	}
}

// DefaultPlatform is linux on this machine's architecture.
func DefaultPlatform() ocispec.Platform {
	return ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// ParsePlatform parses os/arch[/variant].
func ParsePlatform(s string) (ocispec.Platform, error) {
	if s == "" {
		return DefaultPlatform(), nil
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func pickPlatform(idx ocispec.Index, want ocispec.Platform) (ocispec.Descriptor, error) {
	var avail []string
	for _, m := range idx.Manifests {
		if !isIndex(m.MediaType) && !isManifest(m.MediaType) {
			continue
		}
		if m.Platform == nil {
			if len(idx.Manifests) == 1 {
				return m, nil
			}
			continue
		}
		p := m.Platform
		avail = append(avail, p.OS+"/"+p.Architecture+strings.TrimSuffix("/"+p.Variant, "/"))
		if p.OS == want.OS && p.Architecture == want.Architecture && (want.Variant == "" || want.Variant == p.Variant) {
			return m, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("no manifest for platform %s/%s%s (available: %s)",
		want.OS, want.Architecture, strings.TrimSuffix("/"+want.Variant, "/"), strings.Join(avail, ", "))
}

// fetchBlob downloads blob d into w, resuming with Range requests after a
// dropped connection (the registry may ignore Range: then it starts over).
func (c *client) fetchBlob(ctx context.Context, d ocispec.Descriptor, w *content.Writer, onBytes func(int64)) error {
	const attempts = 5
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(time.Duration(attempt*attempt) * 100 * time.Millisecond):
			}
		}
		off := w.Offset()
		if off == d.Size {
			return nil
		}
		retry, err := c.fetchBlobOnce(ctx, d, w, off, onBytes)
		if err == nil {
			return nil
		}
		if !retry || ctx.Err() != nil {
			return err
		}
		lastErr = err
	}
	return fmt.Errorf("gave up after %d attempts: %w", attempts, lastErr)
}

// stallTimeout ends a blob download that receives nothing for this long
// (it is then retried from where it stopped).
var stallTimeout = 60 * time.Second

func (c *client) fetchBlobOnce(ctx context.Context, d ocispec.Descriptor, w *content.Writer, off int64, onBytes func(int64)) (retry bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errStalled := fmt.Errorf("no data for %s", stallTimeout)
	watchdog := time.AfterFunc(stallTimeout, func() { cancel(errStalled) })
	defer watchdog.Stop()
	defer func() {
		if err != nil && context.Cause(ctx) == errStalled {
			retry, err = true, fmt.Errorf("%w: %w", errStalled, err)
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/blobs/"+d.Digest.String(), nil)
	if err != nil {
		return false, err
	}
	if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && off > 0 &&
		strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", off)):
	case resp.StatusCode == http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != d.Size {
			return false, fmt.Errorf("%w: registry sends %d bytes, manifest says %d", content.ErrSizeMismatch, resp.ContentLength, d.Size)
		}
		if off > 0 {
			if err := w.Truncate(); err != nil {
				return false, err
			}
			off = 0
		}
	default:
		err := transport.CheckError(resp, http.StatusOK)
		if err == nil {
			err = fmt.Errorf("unexpected status %s", resp.Status)
		}
		return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests, err
	}
	onBytes(off)
	buf := make([]byte, 256<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		watchdog.Reset(stallTimeout)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return false, werr
			}
			off += int64(n)
			onBytes(off)
		}
		if rerr == io.EOF {
			if off != d.Size {
				return true, fmt.Errorf("connection closed at byte %d of %d", off, d.Size)
			}
			return false, nil
		}
		if rerr != nil {
			return !errors.Is(rerr, context.Canceled), fmt.Errorf("read at byte %d of %d: %w", off, d.Size, rerr)
		}
	}
}
