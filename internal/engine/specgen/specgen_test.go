package specgen

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCommand(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"def"}}
	empty := ""
	other := "/other"
	for _, c := range []struct {
		ep   *string
		args []string
		want []string
	}{
		{nil, nil, []string{"/ep", "def"}},
		{nil, []string{"x"}, []string{"/ep", "x"}},
		{&empty, []string{"sh"}, []string{"sh"}},
		{&other, nil, []string{"/other"}},
		{&other, []string{"a"}, []string{"/other", "a"}},
	} {
		got, err := Command(img, c.ep, c.args)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Command(%v, %v) = %v, %v; want %v", c.ep, c.args, got, err, c.want)
		}
	}
	if _, err := Command(ocispec.ImageConfig{}, nil, nil); err == nil {
		t.Error("no command accepted")
	}
}

func TestCapabilities(t *testing.T) {
	caps, err := Capabilities(false, []string{"net_admin"}, []string{"CAP_CHOWN", "kill"})
	if err != nil {
		t.Fatal(err)
	}
	has := map[string]bool{}
	for _, c := range caps {
		has[c] = true
	}
	if !has["CAP_NET_ADMIN"] || has["CAP_CHOWN"] || has["CAP_KILL"] || len(caps) != 13 {
		t.Fatalf("caps: %v", caps)
	}
	if caps, _ := Capabilities(false, nil, []string{"ALL"}); len(caps) != 0 {
		t.Fatalf("drop ALL: %v", caps)
	}
	if caps, _ := Capabilities(true, nil, nil); len(caps) != len(AllCaps) {
		t.Fatalf("privileged: %d caps", len(caps))
	}
	if _, err := Capabilities(false, []string{"CAP_BOGUS"}, nil); err == nil {
		t.Fatal("unknown capability accepted")
	}
}

func TestParseUlimit(t *testing.T) {
	rl, err := ParseUlimit("nofile=512:1024")
	if err != nil || rl.Type != "RLIMIT_NOFILE" || rl.Soft != 512 || rl.Hard != 1024 {
		t.Fatalf("nofile: %+v %v", rl, err)
	}
	for _, bad := range []string{"nofile", "bogus=1", "nofile=2:1", "nofile=x"} {
		if _, err := ParseUlimit(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestResolveUser(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nuser:x:1000:\nwheel:x:10:user\n"), 0o644)
	u, err := ResolveUser(root, "user", []string{"5"})
	if err != nil || u.UID != 1000 || u.GID != 1000 || !reflect.DeepEqual(u.AdditionalGids, []uint32{10, 5}) {
		t.Fatalf("user: %+v %v", u, err)
	}
	if u, err := ResolveUser(root, "1000:wheel", nil); err != nil || u.UID != 1000 || u.GID != 10 {
		t.Fatalf("1000:wheel: %+v %v", u, err)
	}
	if u, err := ResolveUser(root, "4242", nil); err != nil || u.UID != 4242 || u.GID != 0 {
		t.Fatalf("numeric unknown uid: %+v %v", u, err)
	}
	if _, err := ResolveUser(root, "nobody", nil); err == nil {
		t.Fatal("unknown user accepted")
	}
	// A passwd symlinked out of the root is read inside it (and so is absent).
	os.Remove(filepath.Join(root, "etc/passwd"))
	os.Symlink("/etc/passwd", filepath.Join(root, "etc/passwd"))
	if _, err := ResolveUser(root, "root", nil); err == nil {
		t.Fatal("resolved a user through a symlink to the host's passwd")
	}
}

func TestGenerate(t *testing.T) {
	s, err := Generate(ocispec.ImageConfig{Env: []string{"A=1"}, Cmd: []string{"sh"}, WorkingDir: "/w"}, t.TempDir(), Options{
		Env: []string{"B=2", "A=3"}, Hostname: "h", ReadOnly: true, Tmpfs: []string{"/t:size=1m"},
		SecurityOpt: []string{"seccomp=unconfined", "no-new-privileges"}, ShmSize: 1 << 20,
		Sysctls: []string{"net.ipv4.ip_forward=1"}, CgroupsPath: "/cove/x",
		JoinNS: map[specs.LinuxNamespaceType]string{specs.PIDNamespace: "host"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Process.Env, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=3", "B=2", "HOSTNAME=h"}) {
		t.Errorf("env: %v", s.Process.Env)
	}
	if s.Process.Cwd != "/w" || !s.Root.Readonly || s.Linux.Seccomp != nil || !s.Process.NoNewPrivileges {
		t.Errorf("cwd %q readonly %v seccomp %v nnp %v", s.Process.Cwd, s.Root.Readonly, s.Linux.Seccomp, s.Process.NoNewPrivileges)
	}
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.PIDNamespace {
			t.Error("--pid host still has a pid namespace")
		}
	}
	found := false
	for _, m := range s.Mounts {
		if m.Destination == "/t" && m.Type == "tmpfs" && reflect.DeepEqual(m.Options, []string{"size=1m"}) {
			found = true
		}
		if m.Destination == "/dev/shm" && m.Options[len(m.Options)-1] != "size=1024k" {
			t.Errorf("shm options %v", m.Options)
		}
	}
	if !found || s.Linux.Sysctl["net.ipv4.ip_forward"] != "1" || s.Linux.CgroupsPath != "/cove/x" {
		t.Errorf("tmpfs %v sysctl %v cgroups %q", found, s.Linux.Sysctl, s.Linux.CgroupsPath)
	}
	if _, err := Generate(ocispec.ImageConfig{Cmd: []string{"sh"}}, t.TempDir(), Options{Workdir: "rel"}); err == nil {
		t.Error("relative workdir accepted")
	}
	if _, err := Generate(ocispec.ImageConfig{Cmd: []string{"sh"}}, t.TempDir(), Options{SecurityOpt: []string{"bogus"}}); err == nil {
		t.Error("unknown security-opt accepted")
	}
}
