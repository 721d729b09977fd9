// Command genwasm rebuilds the browser peer embedded in the web page. It is run by
// `go generate ./web` from the web package's directory.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/rtcmesh/rtcmesh/web/internal/wasmbuild"
)

func main() {
	webDir, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "genwasm:", err)
		os.Exit(1)
	}
	raw, gz, err := wasmbuild.Build(filepath.Dir(webDir), webDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "genwasm:", err)
		os.Exit(1)
	}
	fmt.Printf("genwasm: %s: %d bytes, %d gzipped\n", wasmbuild.WasmFile, raw, gz)
}
