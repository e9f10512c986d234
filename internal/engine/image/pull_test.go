package image

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// testRegistry is go-containerregistry's in-memory registry behind a
// handler that can inject faults.
type testRegistry struct {
	srv   *httptest.Server
	host  string
	fault atomic.Value // func(w http.ResponseWriter, r *http.Request) bool (true: handled)
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	tr := &testRegistry{}
	inner := registry.New(registry.Logger(nilLogger()))
	tr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f, ok := tr.fault.Load().(func(http.ResponseWriter, *http.Request) bool); ok && f != nil && f(w, r) {
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(tr.srv.Close)
	tr.host = strings.TrimPrefix(tr.srv.URL, "http://")
	return tr
}

func (tr *testRegistry) setFault(f func(http.ResponseWriter, *http.Request) bool) { tr.fault.Store(f) }

// push puts a random image (layers of size bytes) into the registry as repo:tag.
func (tr *testRegistry) push(t *testing.T, repo string, size int64, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(tr.host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return img
}

func newTestStore(t *testing.T) (*Store, *fakeSnaps) {
	t.Helper()
	snaps := newFakeSnaps()
	s, err := Open(t.TempDir(), snaps)
	if err != nil {
		t.Fatal(err)
	}
	return s, snaps
}

func TestPullFromRegistry(t *testing.T) {
	tr := newTestRegistry(t)
	want := tr.push(t, "test/app:v1", 200_000, 3)
	s, snaps := newTestStore(t)
	var events atomic.Int64
	img, err := s.Pull(context.Background(), tr.host+"/test/app:v1", PullOptions{
		RemoteOptions: RemoteOptions{Progress: func(Event) { events.Add(1) }},
	})
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := want.Digest()
	if img.Digest != wd.String() {
		t.Errorf("manifest digest %s, registry has %s", img.Digest, wd)
	}
	if img.Name != tr.host+"/test/app:v1" {
		t.Errorf("name %q", img.Name)
	}
	wantLayers, _ := want.Layers()
	for i, l := range wantLayers {
		d, _ := l.Digest()
		f, err := s.content.Open(d.String())
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		got, _ := io.ReadAll(f)
		f.Close()
		rc, _ := l.Compressed()
		exp, _ := io.ReadAll(rc)
		if string(got) != string(exp) {
			t.Fatalf("layer %d differs byte-wise from the registry's", i)
		}
	}
	if snaps.count() != 3 || !snaps.Has(img.ChainIDs[2]) {
		t.Fatalf("%d snapshots, want 3 ending in %s", snaps.count(), img.ChainIDs[2])
	}
	if events.Load() == 0 {
		t.Error("no progress events")
	}
	// A second pull finds everything and downloads nothing.
	var gets atomic.Int64
	tr.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/blobs/") {
			gets.Add(1)
		}
		return false
	})
	if _, err := s.Pull(context.Background(), tr.host+"/test/app:v1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if gets.Load() != 0 {
		t.Errorf("second pull fetched %d blobs", gets.Load())
	}
}

// layerFault makes handler f answer GETs of the first layer blob.
func layerFault(t *testing.T, img v1.Image, f func(w http.ResponseWriter, r *http.Request, blob []byte)) func(http.ResponseWriter, *http.Request) bool {
	ls, _ := img.Layers()
	d, _ := ls[0].Digest()
	rc, _ := ls[0].Compressed()
	blob, _ := io.ReadAll(rc)
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) {
			f(w, r, blob)
			return true
		}
		return false
	}
}

func TestPullResumesAfterDroppedConnection(t *testing.T) {
	tr := newTestRegistry(t)
	img := tr.push(t, "test/drop:v1", 300_000, 2)
	var drops, ranges atomic.Int64
	tr.setFault(layerFault(t, img, func(w http.ResponseWriter, r *http.Request, blob []byte) {
		start := 0
		if rg := r.Header.Get("Range"); rg != "" {
			ranges.Add(1)
			var end int
			if n, _ := fmtSscanf(rg, &start, &end); n < 1 {
				start = 0
			}
			w.Header().Set("Content-Range", "bytes "+itoa(start)+"-"+itoa(len(blob)-1)+"/"+itoa(len(blob)))
			w.Header().Set("Content-Length", itoa(len(blob)-start))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", itoa(len(blob)))
			w.WriteHeader(http.StatusOK)
		}
		if drops.Add(1) <= 2 {
			w.Write(blob[start : start+(len(blob)-start)/3])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // drop the connection mid-layer
		}
		w.Write(blob[start:])
	}))
	s, snaps := newTestStore(t)
	if _, err := s.Pull(context.Background(), tr.host+"/test/drop:v1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if ranges.Load() < 2 {
		t.Errorf("resumed with %d range requests, want 2", ranges.Load())
	}
	if snaps.count() != 2 {
		t.Errorf("%d snapshots", snaps.count())
	}
}

func TestPullBadRegistryLeavesNoImage(t *testing.T) {
	cases := []struct {
		name  string
		fault func(img v1.Image) func(http.ResponseWriter, *http.Request) bool
		want  string
	}{
		{"wrong layer digest", func(img v1.Image) func(http.ResponseWriter, *http.Request) bool {
			return layerFault(t, img, func(w http.ResponseWriter, r *http.Request, blob []byte) {
				bad := append([]byte(nil), blob...)
				bad[len(bad)/2] ^= 0xff
				w.Write(bad)
			})
		}, "digest mismatch"},
		{"size mismatch", func(img v1.Image) func(http.ResponseWriter, *http.Request) bool {
			return layerFault(t, img, func(w http.ResponseWriter, r *http.Request, blob []byte) {
				w.Write(append(blob, 0))
			})
		}, "size mismatch"},
		{"always dropped", func(img v1.Image) func(http.ResponseWriter, *http.Request) bool {
			return layerFault(t, img, func(w http.ResponseWriter, r *http.Request, blob []byte) {
				w.Header().Set("Content-Length", itoa(len(blob)))
				w.Write(blob[:10])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			})
		}, "gave up after"},
		{"wrong manifest media type", func(img v1.Image) func(http.ResponseWriter, *http.Request) bool {
			raw, _ := img.RawManifest()
			return func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.Contains(r.URL.Path, "/manifests/") {
					return false
				}
				w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
				w.Write(raw)
				return true
			}
		}, "wrong media type"},
		{"manifest served for a wrong digest", func(img v1.Image) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.Contains(r.URL.Path, "/manifests/") {
					return false
				}
				w.Header().Set("Content-Type", MediaTypeDockerManifest)
				w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("0", 64))
				raw, _ := img.RawManifest()
				w.Write(raw)
				return true
			}
		}, "wrong digest"},
		{"index loop", func(img v1.Image) func(http.ResponseWriter, *http.Request) bool {
			// An index whose only child is "itself": every manifest request gets the index.
			idx := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
				`{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":10,` +
				`"platform":{"os":"linux","architecture":"amd64"}},` +
				`{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":10,` +
				`"platform":{"os":"linux","architecture":"arm64"}}]}`
			return func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.Contains(r.URL.Path, "/manifests/") {
					return false
				}
				w.Header().Set("Content-Type", MediaTypeOCIIndex)
				w.Write([]byte(idx))
				return true
			}
		}, "wrong digest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestRegistry(t)
			img := tr.push(t, "test/bad:v1", 100_000, 2)
			tr.setFault(tc.fault(img))
			s, snaps := newTestStore(t)
			_, err := s.Pull(context.Background(), tr.host+"/test/bad:v1", PullOptions{Platform: "linux/amd64"})
			t.Log(err)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("pull error %v, want %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "test/bad") {
				t.Errorf("error does not name the image: %v", err)
			}
			imgs, _ := s.List()
			if len(imgs) != 0 {
				t.Errorf("image visible after failed pull: %v", imgs[0].Name)
			}
			ls, _ := img.Layers()
			d, _ := ls[0].Digest()
			if s.content.Has(d.String()) && tc.want != "gave up after" {
				t.Errorf("bad layer stored")
			}
			for c := range snaps.files {
				if c == mustDiffID(t, ls[0]) {
					t.Errorf("snapshot of the bad layer committed")
				}
			}
		})
	}
}

func mustDiffID(t *testing.T, l v1.Layer) string {
	d, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func TestGCRemovesUnreferenced(t *testing.T) {
	tr := newTestRegistry(t)
	tr.push(t, "test/a:v1", 50_000, 2)
	tr.push(t, "test/b:v1", 50_000, 1)
	s, snaps := newTestStore(t)
	ctx := context.Background()
	a, err := s.Pull(ctx, tr.host+"/test/a:v1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(ctx, tr.host+"/test/b:v1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(a.Name, "alias/a:x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(ctx, a.Name, false); err != nil {
		t.Fatal(err)
	}
	if !s.content.Has(a.Manifest.Layers[0].Digest.String()) {
		t.Fatal("layer removed while another name still uses the image")
	}
	s.InUse = func(id string) ([]string, error) { return []string{"ctr1"}, nil }
	if _, err := s.Remove(ctx, "alias/a:x", false); err == nil {
		t.Fatal("removed an image in use without force")
	}
	if _, err := s.Remove(ctx, "docker.io/alias/a:x", true); err != nil {
		t.Fatal(err)
	}
	for _, l := range a.Manifest.Layers {
		if s.content.Has(l.Digest.String()) {
			t.Errorf("layer %s kept after its image was removed", l.Digest)
		}
	}
	if snaps.count() != 1 {
		t.Errorf("%d snapshots left, want 1 (image b)", snaps.count())
	}
	// Crash repair: a record whose manifest blob vanished is dropped by GC.
	imgs, _ := s.List()
	p, _ := s.content.Path(imgs[0].Digest)
	os.Remove(p)
	rep, err := s.GC(ctx, GCOptions{})
	if err != nil || len(rep.Records) != 1 {
		t.Fatalf("GC repaired %v, %v", rep.Records, err)
	}
	ents, _ := os.ReadDir(filepath.Join(s.root, "content", "blobs", "sha256"))
	if len(ents) != 0 {
		t.Errorf("%d blobs left after everything was removed", len(ents))
	}
}

func TestPullPicksPlatformFromIndex(t *testing.T) {
	tr := newTestRegistry(t)
	amd, _ := random.Image(10_000, 1)
	arm, _ := random.Image(10_000, 2)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	ref, _ := name.ParseReference(tr.host + "/test/multi:v1")
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	s, _ := newTestStore(t)
	ctx := context.Background()
	img, err := s.Pull(ctx, tr.host+"/test/multi:v1", PullOptions{Platform: "linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	armDigest, _ := arm.Digest()
	idxDigest, _ := idx.Digest()
	if img.Digest != armDigest.String() || img.RepoDigest() != idxDigest.String() || len(img.Manifest.Layers) != 2 {
		t.Fatalf("picked %s (index %s), want arm64 manifest %s from index %s", img.Digest, img.Index, armDigest, idxDigest)
	}
	if _, err := s.Pull(ctx, tr.host+"/test/multi:v1", PullOptions{Platform: "linux/s390x"}); err == nil ||
		!strings.Contains(err.Error(), "no manifest for platform linux/s390x (available: linux/amd64, linux/arm64/v8)") {
		t.Fatalf("missing platform: %v", err)
	}
}

// TestPullResumesAcrossAttempts: a pull that gives up leaves its partial
// download; the next pull continues it with a Range request.
func TestPullResumesAcrossAttempts(t *testing.T) {
	tr := newTestRegistry(t)
	img := tr.push(t, "test/resume:v1", 400_000, 1)
	var firstRange atomic.Value
	var broken atomic.Bool
	broken.Store(true)
	tr.setFault(layerFault(t, img, func(w http.ResponseWriter, r *http.Request, blob []byte) {
		start := 0
		if rg := r.Header.Get("Range"); rg != "" {
			var end int
			fmtSscanf(rg, &start, &end)
			if firstRange.Load() == nil && !broken.Load() {
				firstRange.Store(start)
			}
			w.Header().Set("Content-Range", "bytes "+itoa(start)+"-"+itoa(len(blob)-1)+"/"+itoa(len(blob)))
			w.Header().Set("Content-Length", itoa(len(blob)-start))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", itoa(len(blob)))
		}
		if broken.Load() { // serve a little more each time, then drop
			w.Write(blob[start:min(start+20_000, len(blob))])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		w.Write(blob[start:])
	}))
	s, _ := newTestStore(t)
	ctx := context.Background()
	if _, err := s.Pull(ctx, tr.host+"/test/resume:v1", PullOptions{}); err == nil {
		t.Fatal("pull through a broken registry succeeded")
	}
	broken.Store(false)
	if _, err := s.Pull(ctx, tr.host+"/test/resume:v1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if off, _ := firstRange.Load().(int); off < 100_000 {
		t.Fatalf("second pull resumed at byte %d, want the ~100000 bytes the first one stored", off)
	}
}

// TestPullRetriesStalledDownload: a registry that stops sending mid-layer
// is abandoned after the stall timeout and the download resumes.
func TestPullRetriesStalledDownload(t *testing.T) {
	old := stallTimeout
	stallTimeout = 300 * time.Millisecond
	defer func() { stallTimeout = old }()
	tr := newTestRegistry(t)
	img := tr.push(t, "test/stall:v1", 100_000, 1)
	var calls atomic.Int64
	tr.setFault(layerFault(t, img, func(w http.ResponseWriter, r *http.Request, blob []byte) {
		if calls.Add(1) > 1 {
			w.Write(blob) // ignores Range: the client starts over
			return
		}
		w.Header().Set("Content-Length", itoa(len(blob)))
		w.Write(blob[:1000])
		w.(http.Flusher).Flush()
		select { // stall until the client gives up
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	s, _ := newTestStore(t)
	start := time.Now()
	if _, err := s.Pull(context.Background(), tr.host+"/test/stall:v1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second || calls.Load() != 2 {
		t.Fatalf("pull took %s with %d requests; want a retry after the stall timeout", d, calls.Load())
	}
}
