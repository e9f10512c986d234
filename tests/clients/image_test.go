package clients

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// imageName is the busybox image every scenario imports; pauseImage is
// the same root with `sleep` as its command, a pod sandbox for CRI.
const (
	imageName  = "docker.io/library/cli-busybox:latest"
	pauseImage = "docker.io/library/cli-pause:latest"
)

// testImage is a busybox image built from the host's busybox-static, in
// two forms: a plain root filesystem tar (podman import) and a Docker
// archive as `docker save` writes it (docker load, ctr images import).
type testImage struct {
	rootfsTar string
	archive   string
}

// buildImage writes both forms of the image into dir.
func buildImage(dir string) (*testImage, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	layer, err := rootfsLayer()
	if err != nil {
		return nil, err
	}
	im := &testImage{rootfsTar: filepath.Join(dir, "rootfs.tar"), archive: filepath.Join(dir, "image.tar")}
	if err := os.WriteFile(im.rootfsTar, layer, 0o644); err != nil {
		return nil, err
	}
	arch, err := dockerArchive(layer)
	if err != nil {
		return nil, err
	}
	return im, os.WriteFile(im.archive, arch, 0o644)
}

// probeScript prints what a process sees of its container: identity,
// capabilities, no_new_privs, seccomp, limits, environment, mounts (but
// the root's), /dev, masked and read-only paths. Scenarios run it with
// runc and with cove-runc and compare.
const probeScript = `id
grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status
echo "nofile=$(ulimit -n) nproc=$(ulimit -u) umask=$(umask) pwd=$(pwd)"
env | grep -v -e ^HOSTNAME= -e ^container_uuid= | sort
awk '$3 != "overlay" {print $2, $3, $4}' /proc/mounts | sort
ls -ln /dev | awk 'NR > 1 {print $1, $3, $4, $NF}' | sort
echo "oom_score_adj=$(cat /proc/self/oom_score_adj)"
touch /probe-root 2>&1 | sed 's/.*: //'
echo 1 2>&1 >/proc/sysrq-trigger | sed 's/.*: //'
ls /proc/acpi /sys/firmware 2>&1
cat /proc/kcore 2>&1 | head -c 100
`

// rootfsLayer is a tar of a busybox root: the binary, a symlink per applet,
// users, a page for httpd in /www and /probe.sh (probeScript).
func rootfsLayer() ([]byte, error) {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return nil, err
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	add := func(h *tar.Header, data []byte) error {
		h.ModTime, h.Format = mtime, tar.FormatPAX
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"bin", "dev", "etc", "proc", "root", "sys", "tmp", "var", "www"} {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		if err := add(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: mode}, nil); err != nil {
			return nil, err
		}
	}
	if err := add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755}, bb); err != nil {
		return nil, err
	}
	applets := strings.Fields(string(list))
	sort.Strings(applets)
	for _, a := range applets {
		if a == "busybox" {
			continue
		}
		if err := add(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil); err != nil {
			return nil, err
		}
	}
	files := []struct{ name, data string }{
		{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"},
		{"etc/group", "root:x:0:\nnogroup:x:65534:\n"},
		{"www/index.html", "hello from cli-busybox\n"},
		{"probe.sh", probeScript},
	}
	for _, f := range files {
		if err := add(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644}, []byte(f.data)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// dockerArchive wraps one uncompressed layer in the `docker save` format:
// manifest.json, and per image (imageName, pauseImage) a config named by
// its digest, sharing the layer.
func dockerArchive(layer []byte) ([]byte, error) {
	diffID := sha256.Sum256(layer)
	layerName := hex.EncodeToString(diffID[:]) + "/layer.tar"
	type file struct {
		name string
		data []byte
	}
	files := []file{{layerName, layer}}
	var manifest []map[string]any
	for _, im := range []struct {
		ref string
		cmd []string
	}{{imageName, []string{"sh"}}, {pauseImage, []string{"sleep", "2147483647"}}} {
		cfgJSON, err := json.Marshal(map[string]any{
			"architecture": "amd64",
			"os":           "linux",
			"created":      "2023-11-14T22:13:20Z",
			"config": map[string]any{
				"Env":        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
				"Cmd":        im.cmd,
				"WorkingDir": "/",
			},
			"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diffID[:])}},
			"history": []map[string]string{{"created": "2023-11-14T22:13:20Z", "created_by": "cove tests/clients"}},
		})
		if err != nil {
			return nil, err
		}
		cfgSum := sha256.Sum256(cfgJSON)
		cfgName := hex.EncodeToString(cfgSum[:]) + ".json"
		files = append(files, file{cfgName, cfgJSON})
		manifest = append(manifest, map[string]any{
			"Config": cfgName, "RepoTags": []string{strings.TrimPrefix(im.ref, "docker.io/library/")}, "Layers": []string{layerName},
		})
	}
	manifestJSON, err := json.Marshal(manifest)
	if err != nil {
		return nil, err
	}
	files = append(files, file{"manifest.json", manifestJSON})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if dir := filepath.Dir(f.name); dir != "." {
			if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				return nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
