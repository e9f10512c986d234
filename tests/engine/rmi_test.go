package engine_test

import (
	"strings"
	"testing"
)

// An image used by a container is kept by `rmi` (exit 125, the container
// named) until the container is removed or --force is given, and the
// container can still start.
func TestEngineRmiInUse(t *testing.T) {
	e := newEnv(t)
	e.mustCove("create", "--name", "ceng-rmi", img, "true")
	out, code := e.cove("rmi", img)
	if code != 125 || !strings.Contains(out, "in use") {
		t.Fatalf("rmi of an image in use: exit %d, %q; want 125 and 'in use'", code, out)
	}
	if out, code := e.cove("start", "-a", "ceng-rmi"); code != 0 {
		t.Fatalf("start after a refused rmi: exit %d: %s", code, out)
	}
	e.mustCove("rm", "ceng-rmi")
	e.mustCove("rmi", img)
	if out, _ := e.cove("images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("image still listed after rmi: %q", out)
	}
}
