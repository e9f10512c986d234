package seccomp

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var defaultCaps = []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}

// TestCache: miss, hit, corrupt entry recovered, unwritable cache.
func TestCache(t *testing.T) {
	c := &Cache{Dir: filepath.Join(t.TempDir(), "cache")}
	p := DefaultProfile(defaultCaps)
	f1, res, err := c.Compile(p)
	if err != nil || res != Compiled {
		t.Fatalf("first compile: %v %v", res, err)
	}
	path, _ := c.Path(p)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no cache entry: %v", err)
	}
	f2, res, err := c.Compile(p)
	if err != nil || res != Cached {
		t.Fatalf("second compile: %v %v", res, err)
	}
	if len(f1.Program) != len(f2.Program) || f1.Flags != f2.Flags || f1.Notify != f2.Notify {
		t.Fatal("cached filter differs")
	}
	for i := range f1.Program {
		if f1.Program[i] != f2.Program[i] {
			t.Fatalf("instruction %d differs", i)
		}
	}
	for name, bad := range map[string][]byte{
		"flipped byte": func() []byte { b := append([]byte(nil), good...); b[len(b)/3] ^= 1; return b }(),
		"truncated":    good[:len(good)-9],
		"empty":        {},
		"garbage":      []byte("hello"),
	} {
		os.WriteFile(path, bad, 0o600)
		if _, res, err := c.Compile(p); err != nil || res != Recovered {
			t.Errorf("%s: %v %v, want Recovered", name, res, err)
		}
		if b, _ := os.ReadFile(path); string(b) != string(good) {
			t.Errorf("%s: entry not rewritten", name)
		}
	}
	// A cache that cannot be written still compiles.
	ro := &Cache{Dir: "/proc/nonexistent/cache"}
	if _, res, err := ro.Compile(p); err != nil || res != Compiled {
		t.Errorf("unwritable cache: %v %v", res, err)
	}
}

// TestKey: the key follows the profile's content.
func TestKey(t *testing.T) {
	a, _ := Key(DefaultProfile(defaultCaps))
	b, _ := Key(DefaultProfile(defaultCaps))
	c, _ := Key(DefaultProfile(append(defaultCaps, "CAP_SYS_ADMIN")))
	if a != b || a == c || len(a) != 64 {
		t.Errorf("keys %s %s %s", a, b, c)
	}
}

// A valid cache entry with a program that validation refuses is corrupt.
func TestCacheRefusesInvalidProgram(t *testing.T) {
	f := &Filter{Program: Program{{Code: opJEQ, Jt: 9}, {Code: opRet}}}
	b, _ := encodeEntry(f)
	if _, err := decodeEntry(b); err == nil {
		t.Error("entry with a jump past the end decoded")
	}
}

// BenchmarkCompileDefault compiles the default profile, no cache.
func BenchmarkCompileDefault(b *testing.B) {
	p := DefaultProfile(defaultCaps)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCachedDefault gets the default profile's filter from a warm
// cache: key (JSON + sha256), read, checksum, decode and validate.
func BenchmarkCachedDefault(b *testing.B) {
	p := DefaultProfile(defaultCaps)
	c := &Cache{Dir: b.TempDir()}
	if _, _, err := c.Compile(p); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, res, err := c.Compile(p); err != nil || res != Cached {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkKeyDefault is the part of a cache hit spent on the key.
func BenchmarkKeyDefault(b *testing.B) {
	p := DefaultProfile(defaultCaps)
	for b.Loop() {
		if _, err := Key(p); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCachePrune: the cache keeps at most MaxEntries files, the newest.
func TestCachePrune(t *testing.T) {
	c := &Cache{Dir: t.TempDir(), MaxEntries: 3}
	var last string
	for i := 0; i < 6; i++ {
		p := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, DefaultErrnoRet: nil,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(i + 1))}}}
		if _, _, err := c.Compile(p); err != nil {
			t.Fatal(err)
		}
		last, _ = c.Path(p)
		time.Sleep(5 * time.Millisecond) // distinct mtimes
	}
	ents, _ := os.ReadDir(c.Dir)
	if len(ents) != 3 {
		t.Errorf("%d entries, want 3", len(ents))
	}
	if _, err := os.Stat(last); err != nil {
		t.Errorf("newest entry pruned: %v", err)
	}
}
