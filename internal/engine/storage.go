package engine

import (
	"fmt"

	"cove/internal/engine/quota"
)

// StorageOptions are --storage-opt KEY=VALUE of a container.
type StorageOptions struct {
	StorageOpt map[string]string `json:"StorageOpt,omitempty"`
}

// StorageSize is the writable layer's cap from --storage-opt size= (0:
// none); an unknown key or a bad size is an error naming the flag.
func (o *StorageOptions) StorageSize() (int64, error) {
	var size int64
	for k, v := range o.StorageOpt {
		if k != "size" {
			return 0, fmt.Errorf("--storage-opt %s: unknown option (cove takes size=)", k)
		}
		n, err := quota.ParseSize(v)
		if err != nil {
			return 0, fmt.Errorf("--storage-opt size=%s: %w", v, err)
		}
		size = n
	}
	return size, nil
}
