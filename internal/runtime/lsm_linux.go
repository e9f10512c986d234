package runtime

import (
	"errors"
	"os"
	"strings"
)

// checkLSM refuses what cove-runc cannot honour: an AppArmor profile.
// Running unconfined when confinement was asked for would fail open.
// SELinux labels are ignored while SELinux is disabled, as go-selinux does.
func checkLSM(apparmorProfile string) error {
	if apparmorProfile == "" {
		return nil
	}
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	if err != nil || strings.TrimSpace(string(b)) != "Y" {
		return errors.New("process.apparmorProfile: AppArmor is not enabled on this host")
	}
	return errors.New("process.apparmorProfile: AppArmor profiles are not supported by cove-runc yet")
}
