package bundle

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// writeBundle writes config (a string or a value to encode) into a new
// bundle directory with an empty rootfs and returns the directory.
func writeBundle(t testing.TB, config any) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	var data []byte
	switch c := config.(type) {
	case string:
		data = []byte(c)
	default:
		var err error
		if data, err = json.MarshalIndent(c, "", "\t"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadDefault(t *testing.T) {
	dir := writeBundle(t, Default(false))
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "rootfs"); s.Root.Path != want {
		t.Fatalf("root.path = %q, want %q", s.Root.Path, want)
	}
	s.Root.Path = "rootfs"
	if !reflect.DeepEqual(s, Default(false)) {
		t.Fatal("loaded spec differs from the written one")
	}
}

func TestLoadRelativeDir(t *testing.T) {
	dir := writeBundle(t, Default(false))
	t.Chdir(filepath.Dir(dir))
	s, err := Load(filepath.Base(dir))
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(s.Root.Path) || s.Root.Path != filepath.Join(dir, "rootfs") {
		t.Fatalf("root.path = %q", s.Root.Path)
	}
}

func TestLoadAbsoluteRoot(t *testing.T) {
	other := t.TempDir()
	s := Default(false)
	s.Root.Path = other + "/./"
	got, err := Load(writeBundle(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if got.Root.Path != other {
		t.Fatalf("root.path = %q, want %q", got.Root.Path, other)
	}
}

func TestLoadErrors(t *testing.T) {
	notDir := Default(false)
	notDir.Root.Path = "config.json"
	missingRoot := Default(false)
	missingRoot.Root.Path = "nope"
	badCap := Default(false)
	badCap.Process.Capabilities.Bounding[2] = "CAP_FOO"

	tests := []struct {
		name   string
		config any
		want   []string // substrings of the error
	}{
		{"empty file", "", []string{"config.json:1:1: ", "unexpected end of JSON input"}},
		{"syntax error position", "{\n  \"ociVersion\": \"1.0.0\",\n  \"process\": {,}\n}",
			[]string{"config.json:3:15: ", "invalid character ','"}},
		{"trailing garbage", `{"ociVersion":"1.0.0"} x`, []string{"config.json:1:24: ", "invalid character 'x' after top-level value"}},
		{"type error args", "{\n\"ociVersion\": \"1.0.0\",\n\"process\": {\"args\": \"sh\"}}",
			[]string{"config.json:3:", "process.args: cannot use string as []string"}},
		{"type error element", `{"process": {"args": ["sh", 1]}}`, []string{"process.args: cannot use number as string"}},
		{"type error rlimit", `{"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "hard": -1}]}}`,
			[]string{"process.rlimits.hard: cannot use number -1 as uint64"}},
		{"type error namespace", `{"linux": {"namespaces": [{"type": 3}]}}`, []string{"linux.namespaces.type: cannot use number"}},
		{"type error top level", `[1, 2]`, []string{"(top level): cannot use array as specs.Spec"}},
		{"null", `null`, []string{"config.json: ociVersion: missing"}},
		{"validation", badCap, []string{`config.json: process.capabilities.bounding[2]: unknown capability "CAP_FOO"`}},
		{"major version", `{"ociVersion": "2.0.0"}`, []string{`ociVersion: unsupported major version "2.0.0"`}},
		{"root not a directory", notDir, []string{"root.path: ", "config.json\" is not a directory"}},
		{"root missing", missingRoot, []string{"root.path: ", "nope\": no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeBundle(t, tt.config))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
}

func TestLoadNoConfig(t *testing.T) {
	_, err := Load(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "config.json: no such file or directory") {
		t.Fatalf("error %v", err)
	}
}

func TestLoadUnknownFieldsAllowed(t *testing.T) {
	cfg := `{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"args": ["sh"], "cwd": "/"},
		"x-extension": {"a": 1}, "linux": {"futureField": true}}`
	if _, err := Load(writeBundle(t, cfg)); err != nil {
		t.Fatal(err)
	}
}

func TestPosition(t *testing.T) {
	data := []byte("ab\ncde\n\nf")
	tests := []struct {
		off       int64
		line, col int
	}{
		{0, 1, 1}, {1, 1, 1}, {2, 1, 2}, {3, 2, 1}, {4, 2, 1}, {6, 2, 3}, {8, 4, 1}, {9, 4, 1}, {100, 4, 1}, {-5, 1, 1},
	}
	for _, tt := range tests {
		if line, col := position(data, tt.off); line != tt.line || col != tt.col {
			t.Errorf("position(%d) = %d:%d, want %d:%d", tt.off, line, col, tt.line, tt.col)
		}
	}
}

func TestDefault(t *testing.T) {
	s := Default(false)
	if err := Validate(s); err != nil {
		t.Fatal(err)
	}
	if s.Hostname != "cove" || !s.Process.Terminal || !s.Process.NoNewPrivileges || !s.Root.Readonly || s.Root.Path != "rootfs" {
		t.Fatalf("unexpected basics: %+v %+v", s.Process, s.Root)
	}
	want := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	c := s.Process.Capabilities
	if !slices.Equal(c.Bounding, want) || !slices.Equal(c.Effective, want) || !slices.Equal(c.Permitted, want) ||
		len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
		t.Fatalf("capabilities %+v", c)
	}
	if got := nsTypes(s); !slices.Equal(got, []string{"pid", "network", "ipc", "uts", "mount", "cgroup"}) {
		t.Fatalf("namespaces %v", got)
	}
	var dests []string
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination)
	}
	if !slices.Equal(dests, []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"}) {
		t.Fatalf("mounts %v", dests)
	}
	if !slices.Contains(s.Mounts[2].Options, "gid=5") {
		t.Fatalf("devpts options %v", s.Mounts[2].Options)
	}
	if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sysrq-trigger") {
		t.Fatal("masked/readonly paths missing")
	}
	if s.Process.Rlimits[0] != (specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}) {
		t.Fatalf("rlimits %+v", s.Process.Rlimits)
	}
	// Each call returns an independent spec.
	s.Process.Capabilities.Bounding[0] = "CAP_SYS_ADMIN"
	s.Mounts[1].Options[0] = "x"
	if d := Default(false); d.Process.Capabilities.Bounding[0] != "CAP_AUDIT_WRITE" || d.Mounts[1].Options[0] != "nosuid" {
		t.Fatal("Default shares state between calls")
	}
}

func TestDefaultRootless(t *testing.T) {
	s := Default(true)
	if err := Validate(s); err != nil {
		t.Fatal(err)
	}
	if got := nsTypes(s); !slices.Equal(got, []string{"pid", "ipc", "uts", "mount", "user"}) {
		t.Fatalf("namespaces %v", got)
	}
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	if !reflect.DeepEqual(s.Linux.UIDMappings, []specs.LinuxIDMapping{{ContainerID: 0, HostID: uid, Size: 1}}) ||
		!reflect.DeepEqual(s.Linux.GIDMappings, []specs.LinuxIDMapping{{ContainerID: 0, HostID: gid, Size: 1}}) {
		t.Fatalf("mappings %+v %+v", s.Linux.UIDMappings, s.Linux.GIDMappings)
	}
	if s.Linux.Resources != nil {
		t.Fatal("resources kept")
	}
	var sys *specs.Mount
	for i, m := range s.Mounts {
		for _, o := range m.Options {
			if strings.HasPrefix(o, "gid=") || strings.HasPrefix(o, "uid=") {
				t.Errorf("mount %s keeps %s", m.Destination, o)
			}
		}
		if m.Destination == "/sys" {
			sys = &s.Mounts[i]
		}
	}
	if sys == nil || sys.Type != "none" || sys.Source != "/sys" || !slices.Equal(sys.Options, []string{"rbind", "nosuid", "noexec", "nodev", "ro"}) {
		t.Fatalf("/sys mount %+v", sys)
	}
	if len(s.Mounts) != len(Default(false).Mounts) {
		t.Fatalf("mount count %d", len(s.Mounts))
	}
}

func nsTypes(s *specs.Spec) []string {
	var out []string
	for _, n := range s.Linux.Namespaces {
		out = append(out, string(n.Type))
	}
	return out
}

// FuzzLoad writes arbitrary bytes as config.json and checks that Load never
// panics and that whatever it accepts passes Validate with an absolute root.
func FuzzLoad(f *testing.F) {
	for _, s := range []*specs.Spec{Default(false), Default(true)} {
		data, err := json.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"ociVersion":"1.0.0","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"}}`))
	f.Add([]byte(`{"ociVersion":"1.0.0","root":{"path":"/"},"process":{"args":["a"],"cwd":"/","rlimits":[{"type":"RLIMIT_CPU","soft":1,"hard":1}]},"linux":{"sysctl":{"net.x":"1"},"namespaces":[{"type":"network"}]}}`))
	f.Add([]byte(`{"process":{"args":[1]}}`))
	f.Add([]byte("{\n\t\"ociVersion\": \"1.0.0\",\n\t,\n}"))
	f.Add([]byte(`null`))
	// One bundle directory for all inputs: a fresh one per input makes
	// input minimization crawl.
	dir := writeBundle(f, "")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, ConfigName), data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Load(dir)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if verr := Validate(s); verr != nil {
			t.Fatalf("Load accepted a spec Validate refuses: %v", verr)
		}
		if !filepath.IsAbs(s.Root.Path) {
			t.Fatalf("root.path %q is not absolute", s.Root.Path)
		}
	})
}
