// Where the control plane's files are: this directory (build.sh, kwok-stages.yaml, the Go modules
// of the binaries) and the repository root.
import path from 'node:path';

export const CONTROLPLANE_DIR = import.meta.dirname;
export const REPO_ROOT = path.resolve(CONTROLPLANE_DIR, '../..');
export const BUILD_SCRIPT = path.join(CONTROLPLANE_DIR, 'build.sh');
export const KWOK_STAGES = path.join(CONTROLPLANE_DIR, 'kwok-stages.yaml');
