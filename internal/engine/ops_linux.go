package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"cove/internal/engine/container"
	"cove/internal/engine/monitor"
	"cove/internal/engine/snapshot"
)

// runtimeCmd builds a runtime command for container r.
func (e *Engine) runtimeCmd(r *container.Record, args ...string) (*exec.Cmd, error) {
	o, err := Options(r.Options)
	if err != nil {
		return nil, err
	}
	rt := o.Runtime
	if rt == "" {
		if rt, err = e.RuntimePath(""); err != nil {
			return nil, err
		}
	}
	return exec.Command(rt, append([]string{"--root", e.RuntimeRoot(rt)}, args...)...), nil
}

func (e *Engine) runtimeRun(r *container.Record, args ...string) ([]byte, error) {
	cmd, err := e.runtimeCmd(r, args...)
	if err != nil {
		return nil, err
	}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return out, fmt.Errorf("%s: %s", args[0], strings.TrimSpace(string(ee.Stderr)))
		}
		return out, fmt.Errorf("%s: %w", args[0], err)
	}
	return out, nil
}

// settled returns the container's state once a start in progress (a
// supervisor without a container pid yet) has either run or failed.
func (e *Engine) settled(r *container.Record) State {
	st := e.State(r)
	for deadline := time.Now().Add(10 * time.Second); st.Status == StatusCreated && st.MonitorPid != 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		st = e.State(r)
	}
	return st
}

// Kill sends sig to the container's init.
func (e *Engine) Kill(r *container.Record, sig syscall.Signal) error {
	st := e.State(r)
	if !st.Running {
		return fmt.Errorf("container %s: %w", r.Name, ErrNotRunning)
	}
	if st.MonitorLost {
		return syscall.Kill(st.Pid, sig)
	}
	_, err := e.runtimeRun(r, "kill", r.ID, fmt.Sprint(int(sig)))
	return err
}

// markStopped tells the supervisor not to restart the container.
func (e *Engine) markStopped(r *container.Record) {
	os.WriteFile(filepath.Join(e.RunDir(r.ID), monitor.StoppedFile), nil, 0o600)
}

// Stop sends the stop signal, waits up to timeout, then SIGKILL. With
// timeout < 0 the container's --stop-timeout (default 10 s) applies.
func (e *Engine) Stop(ctx context.Context, r *container.Record, timeout time.Duration) error {
	o, err := Options(r.Options)
	if err != nil {
		return err
	}
	st := e.settled(r)
	if !st.Running && st.MonitorPid == 0 {
		return nil
	}
	e.markStopped(r)
	if !st.Running {
		return e.waitGone(ctx, r, 10*time.Second)
	}
	if st.Paused {
		e.runtimeRun(r, "resume", r.ID)
	}
	if timeout < 0 {
		timeout = 10 * time.Second
		if o.StopTimeout > 0 {
			timeout = time.Duration(o.StopTimeout) * time.Second
		}
	}
	sig := syscall.SIGTERM
	if o.StopSignal != "" {
		if s, err := ParseSignal(o.StopSignal); err == nil {
			sig = s
		}
	}
	if timeout > 0 {
		if err := e.Kill(r, sig); err != nil && !errors.Is(err, ErrNotRunning) {
			return err
		}
		if e.waitGone(ctx, r, timeout) == nil {
			return nil
		}
	}
	if err := e.Kill(r, syscall.SIGKILL); err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	return e.waitGone(ctx, r, 30*time.Second)
}

// waitGone waits until the container is no longer running and its
// supervisor is done (a lost supervisor's container: until the init is gone,
// then the engine cleans up itself).
func (e *Engine) waitGone(ctx context.Context, r *container.Record, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		st := e.State(r)
		if !st.Running && st.MonitorPid == 0 {
			if st.MonitorLost || st.Error != "" {
				e.Cleanup(r)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container %s did not stop within %s", r.Name, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Wait blocks until the container exits and returns its exit code.
func (e *Engine) Wait(ctx context.Context, r *container.Record) (int, error) {
	for {
		st := e.State(r)
		if st.Status == StatusExited && !st.Restarting {
			return st.ExitCode, nil
		}
		if st.Status == StatusCreated && st.MonitorPid == 0 {
			// Not started: docker waits for it to run and exit; so do we.
		}
		if _, err := e.Containers.Get(r.ID); err != nil {
			return -1, err
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Remove deletes a container: with force a running one is killed first.
func (e *Engine) Remove(r *container.Record, force bool) error { return e.remove(r, force, false) }

func (e *Engine) remove(r *container.Record, force, supervisorDeletes bool) error {
	st := e.settled(r)
	// Exited and not to be restarted: a supervisor still alive is only
	// finishing up (runtime delete, waiting for its client, or waiting for
	// this very removal as its cleanup callback).
	finishing := st.Status == StatusExited && !st.Restarting
	if st.Running || st.MonitorPid != 0 && !finishing {
		if !force {
			return fmt.Errorf("container %s is %s: stop it first or use --force", r.Name, st.Status)
		}
		e.markStopped(r)
		if st.Running {
			if err := e.Kill(r, syscall.SIGKILL); err != nil && !errors.Is(err, ErrNotRunning) {
				return err
			}
		}
		if err := e.waitGone(context.Background(), r, 30*time.Second); err != nil {
			return err
		}
	}
	unlock, err := e.lock(r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := e.Containers.Get(r.ID); err != nil {
		return nil // removed meanwhile (the supervisor's --rm cleanup)
	}
	o, _ := Options(r.Options)
	e.cleanupRunOpt(r, o, supervisorDeletes)
	crashPoint("rm:cleaned")
	snaps, err := e.Snapshots()
	if err != nil {
		return err
	}
	if err := snaps.RemoveActive(r.ID); err != nil && !errors.Is(err, snapshot.ErrNotFound) {
		return fmt.Errorf("remove container layer of %s: %w", r.Name, err)
	}
	crashPoint("rm:layer")
	if err := e.Containers.Remove(r); err != nil {
		return err
	}
	e.emit("container", "destroy", r.ID, map[string]string{"name": r.Name, "image": r.Image})
	// Volumes outlive their container; --rm takes its anonymous ones along.
	return e.releaseVolumes(r.ID, o, o != nil && o.AutoRemove)
}

// Pause freezes the container.
func (e *Engine) Pause(r *container.Record) error {
	if st := e.State(r); !st.Running {
		return fmt.Errorf("container %s: %w", r.Name, ErrNotRunning)
	}
	_, err := e.runtimeRun(r, "pause", r.ID)
	return err
}

// Unpause thaws the container.
func (e *Engine) Unpause(r *container.Record) error {
	if st := e.State(r); !st.Paused {
		return fmt.Errorf("container %s is not paused", r.Name)
	}
	_, err := e.runtimeRun(r, "resume", r.ID)
	return err
}

// Top runs `runtime ps` with ps options (default -ef).
func (e *Engine) Top(r *container.Record, psArgs []string) ([]byte, error) {
	if st := e.State(r); !st.Running {
		return nil, fmt.Errorf("container %s: %w", r.Name, ErrNotRunning)
	}
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	return e.runtimeRun(r, append([]string{"ps", r.ID, "--"}, psArgs...)...)
}

// Stats returns the runtime's `events --stats` JSON for the container.
func (e *Engine) Stats(r *container.Record) ([]byte, error) {
	if st := e.State(r); !st.Running {
		return nil, fmt.Errorf("container %s: %w", r.Name, ErrNotRunning)
	}
	return e.runtimeRun(r, "events", "--stats", r.ID)
}

// Rename renames a container.
func (e *Engine) Rename(r *container.Record, name string) error {
	if !container.ValidName(name) {
		return fmt.Errorf("invalid container name %q", name)
	}
	return e.Containers.Rename(r, name)
}

// RestartPolicy starts, after a reboot or a lost supervisor, the stopped
// containers whose policy is always, or unless-stopped and not stopped by a
// user (the stopped marker lives in the run directory, so after a reboot
// unless-stopped containers start too, as docker's do after a daemon restart
// only if they were running). It returns the ids started.
func (e *Engine) RestartPolicy(ctx context.Context) ([]string, error) {
	recs, err := e.Containers.List()
	if err != nil {
		return nil, err
	}
	var started []string
	var errs []error
	for _, r := range recs {
		o, err := Options(r.Options)
		if err != nil || (o.Restart != "always" && o.Restart != "unless-stopped") {
			continue
		}
		st := e.State(r)
		if st.Running || st.MonitorPid != 0 {
			continue
		}
		if _, err := os.Stat(filepath.Join(e.RunDir(r.ID), monitor.StoppedFile)); err == nil {
			continue
		}
		if st.Status == StatusExited && st.Error == "" && st.ExitCode != -1 {
			// Exited under its supervisor, which chose not to restart it
			// (a user's stop or kill): leave it.
			continue
		}
		if _, err := e.Start(ctx, r, StartOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Name, err))
			continue
		}
		started = append(started, r.ID)
	}
	return started, errors.Join(errs...)
}
