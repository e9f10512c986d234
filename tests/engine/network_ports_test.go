package engine_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exposeImage writes a docker-archive of the busybox rootfs whose config
// EXPOSEs 80/tcp and 5000/udp, tagged ref.
func exposeImage(t *testing.T, ref string) string {
	t.Helper()
	layer, err := os.ReadFile(rootTar)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(layer)
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"sh"},
			"ExposedPorts": map[string]any{"80/tcp": map[string]any{}, "5000/udp": map[string]any{}}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(sum[:])}},
	})
	csum := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(csum[:]) + ".json"
	man, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{ref}, "Layers": []string{"layer.tar"}}})
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range []struct {
		name string
		data []byte
	}{{cfgName, cfg}, {"layer.tar", layer}, {"manifest.json", man}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg})
		tw.Write(f.data)
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "expose.tar")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// -P publishes the image's EXPOSEd TCP and UDP ports on random host
// ports, which answer on 127.0.0.1; port ranges map one to one; the
// bandwidth flags hold a transfer to the set rate in both directions.
func TestEngineNetworkPublishAll(t *testing.T) {
	e, _, n := netEnv(t)
	bin := filepath.Join(t.TempDir(), "udpecho")
	build := exec.Command("go", "build", "-o", bin, "./testdata/udpecho")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // static: the rootfs has no libc
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build udpecho: %v %s", err, out)
	}
	ref := "localhost/cengn-expose:latest"
	e.mustCove("image", "load", "-q", "-i", exposeImage(t, ref))
	e.mustCove("network", "create", "--subnet", fmt.Sprintf("10.223.%d.0/24", n), "cengn-p")
	e.mustCove("run", "-d", "--name", "cengn-pa", "--network", "cengn-p", "-P", "-v", bin+":/udpecho:ro",
		ref, "sh", "-c", "httpd -p 80 -h /etc; exec /udpecho 5000")
	ports := map[string]string{}
	for _, l := range strings.Split(e.mustCove("port", "cengn-pa"), "\n") {
		k, v, _ := strings.Cut(l, " -> ")
		ports[k] = v
	}
	tcp, udp := ports["80/tcp"], ports["5000/udp"]
	if tcp == "" || udp == "" || strings.HasSuffix(tcp, ":80") {
		t.Fatalf("-P mapped %v, want random host ports for 80/tcp and 5000/udp", ports)
	}
	_, tport, _ := net.SplitHostPort(tcp)
	_, uport, _ := net.SplitHostPort(udp)
	eventually(t, 5*time.Second, "-P tcp port", func() bool {
		resp, err := http.Get("http://127.0.0.1:" + tport + "/hostname")
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	eventually(t, 5*time.Second, "-P udp port", func() bool {
		c, err := net.Dial("udp", "127.0.0.1:"+uport)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(300 * time.Millisecond))
		c.Write([]byte("ping\n"))
		b := make([]byte, 16)
		k, _ := c.Read(b)
		return strings.HasPrefix(string(b[:k]), "pong")
	})

	// A range: three host ports to three container ports.
	base := 23000 + os.Getpid()%5000
	e.mustCove("run", "-d", "--name", "cengn-pr", "--network", "cengn-p",
		"-p", fmt.Sprintf("127.0.0.1:%d-%d:8080-8082", base, base+2), img, "httpd", "-f", "-p", "8082", "-h", "/etc")
	eventually(t, 5*time.Second, "last port of a range", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/hostname", base+2))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	// Bandwidth: 2 MiB at 1 MiB/s takes about 2 s each way, timed by the
	// receiver (a sender finishes early into socket buffers).
	e.mustCove("run", "-d", "--name", "cengn-bw", "--network", "cengn-p", "--network-ingress-bps", "1m",
		"--network-egress-bps", "1m", img, "sleep", "300")
	ln, err := net.Listen("tcp", fmt.Sprintf("10.223.%d.1:0", n))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, lport, _ := net.SplitHostPort(ln.Addr().String())
	// Ingress: the host sends and closes; the exec ends once all arrived.
	go func() {
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
		if sc, err := ln.Accept(); err == nil {
			io.Copy(sc, io.LimitReader(zeros{}, 2<<20))
			sc.Close()
		}
	}()
	start := time.Now()
	if got := e.mustCove("exec", "cengn-bw", "sh", "-c", fmt.Sprintf("nc 10.223.%d.1 %s </dev/null | wc -c", n, lport)); got != "2097152" {
		t.Fatalf("ingress transfer: got %s bytes", got)
	}
	in := time.Since(start)
	// Egress: the container sends, the host receives.
	sender := e.command(context.Background(), "exec", "cengn-bw", "sh", "-c", fmt.Sprintf("head -c 2097152 /dev/zero | nc 10.223.%d.1 %s", n, lport))
	if err := sender.Start(); err != nil {
		t.Fatal(err)
	}
	defer sender.Wait()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	got, _ := io.Copy(io.Discard, sc)
	out := time.Since(start)
	sc.Close()
	t.Logf("2 MiB at 1 MiB/s: ingress %v, egress %v (%d bytes)", in, out, got)
	if in < 1500*time.Millisecond || in > 6*time.Second || out < 1500*time.Millisecond || out > 6*time.Second || got != 2<<20 {
		t.Fatalf("2 MiB at 1 MiB/s took %v in, %v out (%d bytes out), want about 2 s each", in, out, got)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// `network create --driver cni --opt cni-conf=FILE`: a container on it gets
// its address from Debian's bridge and host-local plugins.
func TestEngineNetworkCNI(t *testing.T) {
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("CNI plugins not installed (Debian package containernetworking-plugins)")
	}
	e, prefix, n := netEnv(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "net.conflist")
	subnet := fmt.Sprintf("10.224.%d.0/24", n)
	os.WriteFile(conf, []byte(fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "x", "plugins": [
		{"type": "bridge", "bridge": "%scni0", "isGateway": true, "ipMasq": false,
		 "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}}]}`,
		prefix, subnet, filepath.Join(dir, "ipam"))), 0o644)
	e.failCove("cni-conf", "network", "create", "--driver", "cni", "cengn-cni")
	e.mustCove("network", "create", "--driver", "cni", "--opt", "cni-conf="+conf, "cengn-cni")
	if out := e.mustCove("network", "ls", "--format", "{{.Name}} {{.Driver}}"); !strings.Contains(out, "cengn-cni cni") {
		t.Fatalf("network ls: %q", out)
	}
	out := e.mustCove("run", "--rm", "--network", "cengn-cni", img, "ip", "-4", "addr", "show", "eth0")
	if !strings.Contains(out, "inet "+strings.TrimSuffix(subnet, "0/24")) {
		t.Fatalf("no address from the cni network's %s: %q", subnet, out)
	}
	e.mustCove("network", "rm", "cengn-cni")
}
