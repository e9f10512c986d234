package bundle

import (
	"errors"
	"fmt"
)

// MaxIDLen is the longest container id ValidateID accepts.
const MaxIDLen = 1024

// ValidateID rejects container ids that are empty, "." or "..", longer than
// MaxIDLen bytes, or contain characters outside [A-Za-z0-9_+.-] (so no "/"
// and no NUL).
func ValidateID(id string) error {
	switch {
	case id == "":
		return errors.New("container id is empty")
	case id == "." || id == "..":
		return fmt.Errorf("invalid container id %q", id)
	case len(id) > MaxIDLen:
		return fmt.Errorf("container id is %d bytes long, more than %d", len(id), MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if !idByte(id[i]) {
			return fmt.Errorf("invalid container id %q: %q not allowed", id, id[i:i+1])
		}
	}
	return nil
}

func idByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '_' || c == '+' || c == '.' || c == '-':
		return true
	}
	return false
}
