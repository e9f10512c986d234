package rootfs

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// mountInfo is one line of /proc/PID/mountinfo.
type mountInfo struct {
	root       string
	mountpoint string
	opts       string   // per-mount options
	optional   []string // shared:N, master:N, ...
	fstype     string
	superOpts  string
}

func readMountinfo() ([]mountInfo, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMountinfo(f)
}

func parseMountinfo(r io.Reader) ([]mountInfo, error) {
	var out []mountInfo
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 6 || len(fields) < sep+4 {
			return nil, fmt.Errorf("parse mountinfo line %q", s.Text())
		}
		out = append(out, mountInfo{
			root:       unescape(fields[3]),
			mountpoint: unescape(fields[4]),
			opts:       fields[5],
			optional:   fields[6:sep],
			fstype:     fields[sep+1],
			superOpts:  fields[sep+3],
		})
	}
	return out, s.Err()
}

// unescape undoes the octal escapes (\040 and friends) of mountinfo.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountFor returns the entry of the mount that contains path: the last one
// whose mount point is path or an ancestor of it.
func mountFor(mounts []mountInfo, path string) *mountInfo {
	var best *mountInfo
	for i := range mounts {
		mp := mounts[i].mountpoint
		if path == mp || mp == "/" || strings.HasPrefix(path, mp+"/") {
			if best == nil || len(mp) >= len(best.mountpoint) {
				best = &mounts[i]
			}
		}
	}
	return best
}
