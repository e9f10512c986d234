package runtime

import (
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// emptyNetMarker, in an image directory, records that the container's
// network namespace was dumped without its devices (see engineNetwork), so
// restore makes it empty too.
const emptyNetMarker = "cove-empty-netns"

// engineNetwork reports whether the container has a network namespace of
// its own holding devices other than lo. Those were set up by an engine
// (Docker's libnetwork, CNI) from outside, and the engine sets them up
// again from its hooks on restore. runc never dumps network devices; a
// veth whose peer is in the host would not restore anyway ("Unknown peer
// net namespace"), which made docker start --checkpoint fail. With lo
// alone the namespace is dumped and restored with its state.
func engineNetwork(spec *specs.Spec, pid int) (bool, error) {
	own := false
	if spec.Linux != nil {
		for _, ns := range spec.Linux.Namespaces {
			own = own || ns.Type == specs.NetworkNamespace && ns.Path == ""
		}
	}
	if !own {
		return false, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return false, fmt.Errorf("network devices of the container: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, l := range lines[min(2, len(lines)):] { // two header lines
		if name, _, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && name != "lo" {
			return true, nil
		}
	}
	return false, nil
}
