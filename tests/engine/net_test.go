package engine_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Bridge networking through the network package: an address on a private
// bridge, a published port answering on 127.0.0.1, cove port, and nothing
// left after rm.
func TestEngineNetworkBridge(t *testing.T) {
	prefix := fmt.Sprintf("ce%d", os.Getpid()%1000)
	subnet := fmt.Sprintf("10.213.%d.0/24", 100+os.Getpid()%100)
	// Registered before newEnv's teardown, so it runs after it (the
	// teardown's system check re-creates a network's bridge and table).
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", prefix+"0").Run()
		exec.Command("nft", "delete", "table", "inet", prefix).Run()
	})
	e := newEnv(t)
	e.extra = []string{"COVE_DEFAULT_NETWORK=bridge", "COVE_NETWORK_PREFIX=" + prefix, "COVE_DEFAULT_SUBNET=" + subnet}
	out := e.mustCove("run", "--rm", img, "ip", "-4", "addr", "show", "eth0")
	if !strings.Contains(out, "inet "+strings.TrimSuffix(subnet, "0/24")) {
		t.Fatalf("no address from %s: %q", subnet, out)
	}
	if out := e.mustCove("run", "--rm", "--network", "none", img, "ls", "/sys/class/net"); out != "lo" {
		t.Fatalf("--network none: interfaces %q", out)
	}
	if out := e.mustCove("run", "--rm", "--add-host", "db:10.1.2.3", img, "grep", "db", "/etc/hosts"); !strings.Contains(out, "10.1.2.3") {
		t.Fatalf("--add-host: %q", out)
	}
	port := 20000 + os.Getpid()%10000
	e.mustCove("run", "-d", "--name", "ceng-web", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), img, "httpd", "-f", "-p", "80", "-h", "/etc")
	if got := e.mustCove("port", "ceng-web"); got != fmt.Sprintf("80/tcp -> 127.0.0.1:%d", port) {
		t.Fatalf("port: %q", got)
	}
	var body string
	eventually(t, 5*time.Second, "published port", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/hostname", port))
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return resp.StatusCode == 200
	})
	id := e.inspect("ceng-web", "{{.Id}}")
	if strings.TrimSpace(body) != id[:12] {
		t.Fatalf("published port served %q, want the container's hostname %s", body, id[:12])
	}
	e.mustCove("rm", "-f", "ceng-web")
	links, _ := exec.Command("ip", "-o", "link").Output()
	if strings.Contains(string(links), prefix+"v") {
		t.Fatalf("veth left after rm:\n%s", links)
	}
	if _, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
		t.Fatal("published port still answers after rm")
	}
}
