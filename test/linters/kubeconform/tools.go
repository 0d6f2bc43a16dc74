//go:build tools

// Pins the kubeconform version the linter tests build (test/linters/build.sh).
package tools

import _ "github.com/yannh/kubeconform/cmd/kubeconform"
