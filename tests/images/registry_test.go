package images

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"cove/internal/engine/snapshot"
)

// TestImagesPushPullRoundTrip: an image imported from a busybox rootfs is
// pushed to a real registry, pulled into a second store, compared byte for
// byte with what the registry holds, mounted through overlayfs, then
// removed and collected.
func TestImagesPushPullRoundTrip(t *testing.T) {
	requireRoot(t)
	reg := startRegistry(t)
	src, dst := t.TempDir(), t.TempDir()
	ref := reg.host + "/cove-test/busybox:1"
	id := mustCove(t, src, "image", "import", "--change", `CMD ["/bin/sh"]`, rootfs(t), ref)
	mustCove(t, src, "push", "-q", ref)
	digest := inspectField(t, src, ref, "{{.Digest}}")

	manifest := reg.get(t, "/v2/cove-test/busybox/manifests/1", "application/vnd.oci.image.manifest.v1+json")
	if sha(manifest) != digest {
		t.Fatalf("registry serves manifest %s, cove pushed %s", sha(manifest), digest)
	}

	if got := mustCove(t, dst, "pull", "-q", ref); got != id {
		t.Fatalf("pull printed %q, want image ID %s", got, id)
	}
	if got := inspectField(t, dst, ref, "{{.Digest}}"); got != digest {
		t.Fatalf("pulled manifest %s, want %s", got, digest)
	}
	byDigest := reg.host + "/cove-test/busybox@" + digest
	if got := mustCove(t, dst, "pull", "-q", byDigest); got != id {
		t.Fatalf("pull by digest printed %q, want %s", got, id)
	}
	mustCove(t, dst, "rmi", byDigest)
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	for _, d := range append([]string{m.Config.Digest}, m.Layers[0].Digest) {
		want := reg.get(t, "/v2/cove-test/busybox/blobs/"+d)
		got, err := os.ReadFile(filepath.Join(dst, "content", "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("blob %s differs from the registry's (%v)", d, err)
		}
	}

	// The unpacked layer, mounted by the kernel, holds the same busybox.
	chain := strings.Trim(inspectField(t, dst, ref, "{{index .RootFS.DiffIDs 0}}"), "\n")
	snaps, err := snapshot.Open(filepath.Join(dst, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	key := "imgtest-view"
	if err := snaps.Prepare(key, chain, snapshot.WithReadOnly()); err != nil {
		t.Fatal(err)
	}
	defer snaps.RemoveActive(key)
	mnt := t.TempDir()
	if err := snaps.Mount(key, mnt); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(mnt, "bin", "busybox"))
	snaps.Unmount(mnt)
	want, _ := os.ReadFile("/bin/busybox")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("mounted image's /bin/busybox differs from the host's (%v)", err)
	}
	if err := snaps.RemoveActive(key); err != nil {
		t.Fatal(err)
	}

	// rm + prune leave an empty store.
	mustCove(t, dst, "rmi", ref)
	mustCove(t, dst, "image", "prune")
	blobs, _ := os.ReadDir(filepath.Join(dst, "content", "blobs", "sha256"))
	infos, _ := snaps.List()
	if len(blobs) != 0 || len(infos) != 0 {
		t.Fatalf("after rmi + prune: %d blobs, %d snapshots", len(blobs), len(infos))
	}
}

// TestImagesSkopeoInterop: skopeo copies what cove pushed, cove loads what
// skopeo wrote, and cove pulls what skopeo pushed.
func TestImagesSkopeoInterop(t *testing.T) {
	requireRoot(t)
	requireTool(t, "skopeo")
	reg := startRegistry(t)
	root := t.TempDir()
	ref := reg.host + "/cove-test/sk:1"
	id := mustCove(t, root, "import", rootfs(t), ref)
	mustCove(t, root, "push", "-q", ref)
	digest := inspectField(t, root, ref, "{{.Digest}}")

	raw := skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+ref)
	if sha([]byte(raw)) != digest {
		t.Fatalf("skopeo sees manifest %s, cove pushed %s", sha([]byte(raw)), digest)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	skopeo(t, "copy", "-q", "--src-tls-verify=false", "docker://"+ref, "oci:"+dir+":v1")
	other := t.TempDir()
	mustCove(t, other, "load", "-q", "-i", dir)
	if got := inspectField(t, other, "localhost/loaded:v1", "{{.ID}}"); got != id {
		t.Fatalf("image skopeo copied has ID %s, want %s", got, id)
	}

	layout := filepath.Join(t.TempDir(), "layout")
	mustCove(t, root, "save", "--format", "oci-dir", "-o", layout, ref)
	ref2 := reg.host + "/cove-test/fromskopeo:2"
	skopeo(t, "copy", "-q", "--dest-tls-verify=false", "oci:"+layout+":"+ref, "docker://"+ref2)
	third := t.TempDir()
	if got := mustCove(t, third, "pull", "-q", ref2); got != id {
		t.Fatalf("pull of skopeo's push gave %s, want %s", got, id)
	}
}

func skopeo(t *testing.T, args ...string) string {
	t.Helper()
	out, err := execOut("skopeo", args...)
	if err != nil {
		t.Fatalf("skopeo %v: %v\n%s", args, err, out)
	}
	return out
}

// TestImagesConcurrentProcesses: several cove processes pulling the same
// image into one store, listing and pruning meanwhile, all succeed and
// leave exactly one complete image.
func TestImagesConcurrentProcesses(t *testing.T) {
	requireRoot(t)
	reg := startRegistry(t)
	src, root := t.TempDir(), t.TempDir()
	ref := reg.host + "/cove-test/conc:1"
	id := mustCove(t, src, "import", rootfs(t), ref)
	mustCove(t, src, "push", "-q", ref)

	var wg sync.WaitGroup
	results := make([]result, 6)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 3 {
			case 2:
				results[i] = cove(t, root, "images")
			case 1:
				results[i] = cove(t, root, "image", "prune")
			default:
				results[i] = cove(t, root, "pull", "-q", ref)
			}
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("process %d: exit %d: %s", i, r.code, r.stderr)
		}
	}
	if got := mustCove(t, root, "images", "-q", "--no-trunc"); got != id {
		t.Fatalf("images after concurrent pulls: %q, want %s", got, id)
	}
	// Whatever prune ran concurrently, the image is complete: push it back.
	mustCove(t, root, "push", "-q", ref, reg.host+"/cove-test/conc:again")
}
