package monitor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// oomKilled reports whether the kernel's OOM killer killed a process of
// the container: the oom_kill count of its memory cgroup (v1
// memory.oom_control, v2 memory.events), read before the runtime's delete
// removes the cgroup.
func oomKilled(bundle string) bool {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return false
	}
	var spec struct {
		Linux struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	if json.Unmarshal(b, &spec) != nil {
		return false
	}
	cg := spec.Linux.CgroupsPath
	if cg == "" || strings.Contains(cg, ":") || strings.Contains(cg, "..") {
		return false
	}
	for _, f := range []string{
		filepath.Join("/sys/fs/cgroup/memory", cg, "memory.oom_control"),
		filepath.Join("/sys/fs/cgroup", cg, "memory.events"),
		filepath.Join("/sys/fs/cgroup/unified", cg, "memory.events"),
	} {
		if n, ok := counter(f, "oom_kill"); ok {
			return n > 0
		}
	}
	return false
}

// counter reads "KEY N" from a flat-keyed cgroup file.
func counter(file, key string) (int64, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
