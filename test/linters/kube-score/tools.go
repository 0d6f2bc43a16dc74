//go:build tools

// Pins the kube-score version the linter tests build (test/linters/build.sh).
package tools

import _ "github.com/zegl/kube-score/cmd/kube-score"
