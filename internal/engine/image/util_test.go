package image

import (
	"fmt"
	"io"
	"log"
	"strconv"
)

func nilLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func itoa(n int) string { return strconv.Itoa(n) }

// fmtSscanf parses a "bytes=START-[END]" Range header.
func fmtSscanf(rg string, start, end *int) (int, error) {
	return fmt.Sscanf(rg, "bytes=%d-%d", start, end)
}
