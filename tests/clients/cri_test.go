package clients

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criConfig is the CRI plugin's configuration: two runtime handlers of
// the runc shim, "runc" and "cove", whose options name the binary
// (BinaryName) and a private root each, as a Kubernetes node would
// configure a runtime class. CNI dirs are private and empty: pods use the
// host network. restrict_oom_score_adj: the sandbox's -998 needs
// CAP_SYS_RESOURCE, which root lacks here.
func criConfig(dir string) string {
	return fmt.Sprintf(`[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  sandbox_image = %q
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = %q
        Root = %q
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.cove]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.cove.options]
        BinaryName = %q
        Root = %q
`, pauseImage, filepath.Join(dir, "cni-bin"), filepath.Join(dir, "cni-conf"),
		runcBin, filepath.Join(dir, "root-runc"), coveBin, filepath.Join(dir, "root-cove"))
}

// TestContainerdCRI drives containerd's CRI plugin as the kubelet does, with
// a runtime handler whose shim options set BinaryName: a pod sandbox and a
// container in it with a memory limit, ExecSync, UpdateContainerResources
// (checked in the cgroup), stats, stop and removal; once with runc, once
// with cove-runc, whose state under its Root shows that it ran them; and
// a probe run by ExecSync, compared between the two.
func TestContainerdCRI(t *testing.T) {
	needBins(t, containerdBin, ctrBin, shimBin)
	dir := t.TempDir()
	sock := startContainerd(t, dir, true, criConfig(dir))
	ctr := &client{t: t, argv: []string{ctrBin, "-a", sock, "-n", "k8s.io"}, timeout: time.Minute}
	ctr.must("images", "import", image.archive)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rs := cri.NewRuntimeServiceClient(conn)
	parent := "/cli-cri-" + strconv.Itoa(os.Getpid())
	// Registered before the pods' cleanups: runs after them.
	removeCgroupTree(t, parent)
	// CRI's image service learns of imported images asynchronously.
	is := cri.NewImageServiceClient(conn)
	if !waitFor(10*time.Second, func() bool {
		st, err := is.ImageStatus(context.Background(), &cri.ImageStatusRequest{Image: &cri.ImageSpec{Image: pauseImage}})
		return err == nil && st.Image != nil
	}) {
		t.Fatalf("CRI does not see %s after import", pauseImage)
	}
	probes := probeOutputs{}
	for _, h := range []struct{ name, handler, root string }{
		{"runc", "runc", filepath.Join(dir, "root-runc")},
		{"cove-runc", "cove", filepath.Join(dir, "root-cove")},
	} {
		t.Run(h.name, func(t *testing.T) { criScenario(t, rs, h.handler, h.root, parent, dir, probes, h.name) })
	}
	probes.compare(t, "exec")
}

func criScenario(t *testing.T, rs cri.RuntimeServiceClient, handler, root, parent, dir string, probes probeOutputs, name string) {
	ctx := func() context.Context {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		t.Cleanup(cancel)
		return c
	}
	hostNet := &cri.NamespaceOption{Network: cri.NamespaceMode_NODE}
	podCfg := &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: "cli-cri-" + handler, Namespace: "default", Uid: "cli-cri-uid-" + handler},
		LogDirectory: filepath.Join(dir, "logs-"+handler),
		Linux: &cri.LinuxPodSandboxConfig{
			CgroupParent:    parent + "/pod-" + handler,
			SecurityContext: &cri.LinuxSandboxSecurityContext{NamespaceOptions: hostNet},
		},
	}
	pod, err := rs.RunPodSandbox(ctx(), &cri.RunPodSandboxRequest{Config: podCfg, RuntimeHandler: handler})
	if err != nil {
		t.Fatalf("RunPodSandbox with handler %s: %v", handler, err)
	}
	t.Cleanup(func() {
		rs.StopPodSandbox(context.Background(), &cri.StopPodSandboxRequest{PodSandboxId: pod.PodSandboxId})
		rs.RemovePodSandbox(context.Background(), &cri.RemovePodSandboxRequest{PodSandboxId: pod.PodSandboxId})
	})
	if _, err := os.Stat(filepath.Join(root, "k8s.io", pod.PodSandboxId)); err != nil {
		t.Errorf("sandbox not run by handler %s's BinaryName: no state under its Root: %v", handler, err)
	}

	created, err := rs.CreateContainer(ctx(), &cri.CreateContainerRequest{
		PodSandboxId: pod.PodSandboxId,
		Config: &cri.ContainerConfig{
			Metadata: &cri.ContainerMetadata{Name: "counter"},
			Image:    &cri.ImageSpec{Image: imageName},
			Command:  []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"},
			LogPath:  "counter.log",
			Linux: &cri.LinuxContainerConfig{
				Resources:       &cri.LinuxContainerResources{MemoryLimitInBytes: 64 << 20},
				SecurityContext: &cri.LinuxContainerSecurityContext{NamespaceOptions: hostNet},
			},
		},
		SandboxConfig: podCfg,
	})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	id := created.ContainerId
	if _, err := rs.StartContainer(ctx(), &cri.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	st, err := rs.ContainerStatus(ctx(), &cri.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil || st.Status.State != cri.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("ContainerStatus: %v, %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(root, "k8s.io", id)); err != nil {
		t.Errorf("container not run by handler %s's BinaryName: no state under its Root: %v", handler, err)
	}
	pid := criPid(t, st.Info["info"])
	if v, err := cgroupFile(pid, "memory", "memory.limit_in_bytes"); err != nil || v != strconv.Itoa(64<<20) {
		t.Errorf("memory.limit_in_bytes %q (%v), want %d", v, err, 64<<20)
	}

	ex, err := rs.ExecSync(ctx(), &cri.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo exec-ok; exit 3"}, Timeout: 30})
	if err != nil || ex.ExitCode != 3 || string(ex.Stdout) != "exec-ok\n" {
		t.Errorf("ExecSync: want exec-ok and exit 3, got %v (%v)", ex, err)
	}

	if ex, err := rs.ExecSync(ctx(), &cri.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "/probe.sh"}, Timeout: 30}); err == nil {
		probes[name+"/exec"] = string(ex.Stdout) + string(ex.Stderr)
	} else {
		t.Errorf("ExecSync probe: %v", err)
	}

	// UpdateContainerResources runs `RUNTIME update --resources -`.
	_, err = rs.UpdateContainerResources(ctx(), &cri.UpdateContainerResourcesRequest{ContainerId: id,
		Linux: &cri.LinuxContainerResources{MemoryLimitInBytes: 96 << 20}})
	if err != nil {
		t.Errorf("UpdateContainerResources: %v", err)
	} else if v, err := cgroupFile(pid, "memory", "memory.limit_in_bytes"); err != nil || v != strconv.Itoa(96<<20) {
		t.Errorf("after update: memory.limit_in_bytes %q (%v), want %d", v, err, 96<<20)
	}

	stats, err := rs.ContainerStats(ctx(), &cri.ContainerStatsRequest{ContainerId: id})
	if err != nil || stats.Stats.Memory == nil || stats.Stats.Memory.WorkingSetBytes == nil || stats.Stats.Memory.WorkingSetBytes.Value == 0 {
		t.Errorf("ContainerStats: want a memory working set, got %v (%v)", stats, err)
	}

	if _, err := rs.StopContainer(ctx(), &cri.StopContainerRequest{ContainerId: id, Timeout: 10}); err != nil {
		t.Errorf("StopContainer: %v", err)
	}
	st, err = rs.ContainerStatus(ctx(), &cri.ContainerStatusRequest{ContainerId: id})
	if err != nil || st.Status.State != cri.ContainerState_CONTAINER_EXITED || st.Status.ExitCode != 0 {
		t.Errorf("after StopContainer: want exited with 0 (the TERM trap), got %v (%v)", st.GetStatus(), err)
	}
	if alive(pid) {
		t.Errorf("pid %d alive after StopContainer", pid)
	}
	if _, err := rs.RemoveContainer(ctx(), &cri.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Errorf("RemoveContainer: %v", err)
	}
	if _, err := rs.StopPodSandbox(ctx(), &cri.StopPodSandboxRequest{PodSandboxId: pod.PodSandboxId}); err != nil {
		t.Errorf("StopPodSandbox: %v", err)
	}
	if _, err := rs.RemovePodSandbox(ctx(), &cri.RemovePodSandboxRequest{PodSandboxId: pod.PodSandboxId}); err != nil {
		t.Errorf("RemovePodSandbox: %v", err)
	}
	for _, c := range []string{id, pod.PodSandboxId} {
		if _, err := os.Stat(filepath.Join(root, "k8s.io", c)); !os.IsNotExist(err) {
			t.Errorf("runtime state of %s left after removal: %v", c, err)
		}
	}
}

// criPid is the "pid" of ContainerStatus's verbose info (JSON).
func criPid(t *testing.T, info string) int {
	t.Helper()
	var v struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(info), &v); err != nil || v.Pid <= 0 {
		t.Fatalf("no pid in container info (%v): %.200s", err, info)
	}
	return v.Pid
}
