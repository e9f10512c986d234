package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cove/internal/engine/snapshot"
)

type entry struct {
	name, body, link, sym string
	dir                   bool
}

func layerTar(t *testing.T, entries []entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.dir:
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, e.link, 0
		case e.sym != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.sym, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return b.Bytes()
}

// ociLayout writes an OCI image layout with gzip layers, tagged "v1".
func ociLayout(t *testing.T, dir string, layers [][]byte) {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	os.MkdirAll(blobs, 0o755)
	put := func(b []byte) (string, int) {
		d := sha(b)
		os.WriteFile(filepath.Join(blobs, strings.TrimPrefix(d, "sha256:")), b, 0o644)
		return d, len(b)
	}
	var descs, diffs []string
	for _, l := range layers {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(l)
		zw.Close()
		d, n := put(z.Bytes())
		descs = append(descs, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}`, d, n))
		diffs = append(diffs, fmt.Sprintf("%q", sha(l)))
	}
	cd, cn := put([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[` + strings.Join(diffs, ",") + `]}}`))
	md, mn := put([]byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[%s]}`, cd, cn, strings.Join(descs, ","))))
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []map[string]any{{
		"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
		"annotations": map[string]string{"org.opencontainers.image.ref.name": "v1"}}}})
	os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// TestImagesWhiteoutsAcrossLayers: an image whose second layer deletes a
// file (.wh.) and replaces a directory (.wh..wh..opq) of the first, pushed
// by skopeo and pulled by cove, mounts with those files gone.
func TestImagesWhiteoutsAcrossLayers(t *testing.T) {
	requireRoot(t)
	requireTool(t, "skopeo")
	reg := startRegistry(t)
	l1 := layerTar(t, []entry{
		{name: "etc/", dir: true}, {name: "etc/keep", body: "keep"}, {name: "etc/gone", body: "gone"},
		{name: "opq/", dir: true}, {name: "opq/old", body: "old"},
	})
	l2 := layerTar(t, []entry{
		{name: "etc/", dir: true}, {name: "etc/.wh.gone"}, {name: "etc/link", link: "etc/keep"},
		{name: "opq/", dir: true}, {name: "opq/.wh..wh..opq"}, {name: "opq/new", body: "new"},
	})
	layout := filepath.Join(t.TempDir(), "layout")
	ociLayout(t, layout, [][]byte{l1, l2})
	ref := reg.host + "/cove-test/whiteouts:1"
	skopeo(t, "copy", "-q", "--dest-tls-verify=false", "oci:"+layout+":v1", "docker://"+ref)

	root := t.TempDir()
	mustCove(t, root, "pull", "-q", ref)
	var diffIDs []string
	if err := json.Unmarshal([]byte(inspectField(t, root, ref, "{{json .RootFS.DiffIDs}}")), &diffIDs); err != nil {
		t.Fatal(err)
	}
	chain := sha([]byte(diffIDs[0] + " " + diffIDs[1]))
	snaps, err := snapshot.Open(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	key := "imgtest-wh"
	if err := snaps.Prepare(key, chain, snapshot.WithReadOnly()); err != nil {
		t.Fatal(err)
	}
	defer snaps.RemoveActive(key)
	mnt := t.TempDir()
	if err := snaps.Mount(key, mnt); err != nil {
		t.Fatal(err)
	}
	defer snaps.Unmount(mnt)
	check := func(p string, want string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(mnt, p))
		switch {
		case want == "" && err == nil:
			t.Errorf("%s still visible through the mount", p)
		case want != "" && string(b) != want:
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	check("etc/keep", "keep")
	check("etc/gone", "")
	check("etc/link", "keep")
	check("opq/old", "")
	check("opq/new", "new")
	for _, p := range []string{"etc/.wh.gone", "opq/.wh..wh..opq"} {
		if _, err := os.Lstat(filepath.Join(mnt, p)); err == nil {
			t.Errorf("whiteout marker %s visible in the mount", p)
		}
	}
}

// TestImagesHostileLayersStayInside: layers climbing out with "../" fail
// the pull with an error naming image and layer and leave no image; a
// symlink to a host directory followed by a file through it writes inside
// the snapshot only.
func TestImagesHostileLayersStayInside(t *testing.T) {
	requireRoot(t)
	requireTool(t, "skopeo")
	reg := startRegistry(t)
	hostDir := t.TempDir()
	victim := filepath.Join(hostDir, "pwned")
	cases := []struct {
		name    string
		layer   []entry
		mustErr bool
	}{
		{"dotdot", []entry{{name: "../../../../../../.." + victim, body: "x"}}, true},
		{"hardlink-out", []entry{{name: "passwd", link: "../../../../../../../etc/passwd"}}, true},
		{"symlink-dir", []entry{{name: "evil", sym: hostDir}, {name: "evil/pwned", body: "x"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			layout := filepath.Join(t.TempDir(), "layout")
			ociLayout(t, layout, [][]byte{layerTar(t, tc.layer)})
			ref := reg.host + "/cove-test/hostile-" + tc.name + ":1"
			skopeo(t, "copy", "-q", "--dest-tls-verify=false", "oci:"+layout+":v1", "docker://"+ref)
			root := t.TempDir()
			r := cove(t, root, "pull", "-q", ref)
			if _, err := os.Lstat(victim); err == nil {
				t.Fatalf("layer wrote %s on the host", victim)
			}
			if tc.mustErr {
				if r.code != 125 || !strings.Contains(r.stderr, ref) || !strings.Contains(r.stderr, "layer sha256:") {
					t.Fatalf("pull: exit %d, %s", r.code, r.stderr)
				}
				if out := mustCove(t, root, "images", "-q"); out != "" {
					t.Fatalf("image visible after a refused layer: %s", out)
				}
			} else if r.code != 0 {
				t.Fatalf("pull: exit %d, %s", r.code, r.stderr)
			}
		})
	}
}
