// What the mailfleet image is, declared once: scripts/build-image.ts builds it without Docker,
// the Dockerfile builds the same file set for people with Docker (test/unit/image.test.ts
// compares the two), and the image test runs it (test/integration/image.test.ts).
import { PROGRAM_DIRS, PROGRAM_FILES } from '../program-files.ts';

/** Where the programs live in the image (the Dockerfile's WORKDIR). */
export const APP_DIR = '/app';
/** node is found on PATH: the chart runs `command: [node, <flags>, /app/bin/mailfleet.ts]`. */
export const NODE_PATH = '/usr/local/bin/node';
export const ENTRYPOINT = ['node', `${APP_DIR}/bin/mailfleet.ts`];
export const CMD = ['--help'];
/** The unprivileged user (uid/gid 1000, as the node image's "node" user the Dockerfile uses). */
export const USER = '1000:1000';
export const ENV = ['NODE_ENV=production', 'PATH=/usr/local/bin:/usr/bin:/bin'];
/** The repository the chart pulls (charts/mailfleet/values.yaml image.repository). */
export const REPOSITORY = 'ghcr.io/mailfleet/mailfleet';
/** Where the source is (Chart.yaml sources): the image's org.opencontainers.image.source. */
export const SOURCE_URL = 'https://github.com/mailfleet/mailfleet';

/**
 * The OCI annotations the image config carries as labels, so a registry, a scanner or
 * `crane config` can tell which commit an image was built from. The Dockerfile sets the same keys
 * (VERSION and REVISION as build arguments; test/unit/image.test.ts compares them); `created` is
 * the builder's only, from SOURCE_DATE_EPOCH, as Docker stamps its own build time.
 */
export function ociLabels(o: {
  version: string;
  revision: string;
  created?: string;
}): Record<string, string> {
  return {
    'org.opencontainers.image.source': SOURCE_URL,
    'org.opencontainers.image.version': o.version,
    'org.opencontainers.image.revision': o.revision,
    'org.opencontainers.image.licenses': 'Apache-2.0',
    'org.opencontainers.image.title': 'mailfleet',
    ...(o.created ? { 'org.opencontainers.image.created': o.created } : {}),
  };
}

/** The production dependencies, installed from package-lock.json (the Dockerfile runs the same). */
export const NPM_CI_ARGS = ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'];

/** The repository paths copied into APP_DIR, besides node_modules (test files left out). */
export const APP_SOURCES: readonly string[] = [...PROGRAM_FILES, ...PROGRAM_DIRS];

/** The image's account database: root and the 1000 user, neither with a login shell (there
 * is no shell in the image). */
export const PASSWD =
  'root:x:0:0:root:/root:/nonexistent\nmailfleet:x:1000:1000:mailfleet:/app:/nonexistent\n';
export const GROUP = 'root:x:0:\nmailfleet:x:1000:\n';
/** glibc reads it for getaddrinfo (in-cluster API server and MX host names). */
export const NSSWITCH = 'passwd: files\ngroup: files\nhosts: files dns\n';

/** A library node links against (from `ldd`), and the Debian package that ships it. */
export interface SharedLibrary {
  /** The soname, e.g. libstdc++.so.6. */
  name: string;
  /** Where the host's loader found it, e.g. /lib/x86_64-linux-gnu/libstdc++.so.6. */
  hostPath: string;
}

/** Parses `ldd` output into the libraries to ship (the vDSO is the kernel's, not a file). */
export function parseLdd(output: string): SharedLibrary[] {
  const libraries: SharedLibrary[] = [];
  for (const line of output.split('\n')) {
    const arrow = /^\s*(\S+)\s+=>\s+(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    const bare = /^\s*(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (arrow) libraries.push({ name: arrow[1]!, hostPath: arrow[2]! });
    else if (bare) libraries.push({ name: bare[1]!.split('/').pop()!, hostPath: bare[1]! });
  }
  return libraries;
}

/** The same file under merged /usr and under the split layout, so `dpkg -S` finds it either way
 * (bookworm ships libc6 in /lib, libstdc++6 in /usr/lib; /lib is a link to /usr/lib). */
export function pathVariants(file: string): string[] {
  const variants = [file];
  if (file.startsWith('/usr/')) variants.push(file.slice(4));
  else variants.push(`/usr${file}`);
  return variants;
}

/** One layer of the image: a name for the history and the directory tree it holds. */
export const LAYERS = ['node and shared libraries', 'production node_modules', 'mailfleet'] as const;

/** GNU tar arguments that make a layer reproducible: sorted names, one fixed time, root-owned,
 * no access/change times, no group/other write. */
export function tarArgs(root: string, out: string, epoch: number): string[] {
  return [
    '--create',
    `--file=${out}`,
    `--directory=${root}`,
    '--sort=name',
    '--format=posix',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    `--mtime=@${epoch}`,
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--mode=u+w,go-w,a+rX',
    '.',
  ];
}
