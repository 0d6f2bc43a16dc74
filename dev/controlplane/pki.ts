// Certificates of the local control plane, made with the openssl CLI: a CA, the API server's
// serving certificate, one client certificate per component and the ServiceAccount signing key.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  saKey: string;
  saPub: string;
  /** client identities: name -> {cert, key} paths */
  clients: Record<string, { cert: string; key: string }>;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function issue(
  dir: string,
  name: string,
  subject: string,
  extensions: string[],
): { cert: string; key: string } {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.crt`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, extensions.join('\n') + '\n');
  openssl(['req', '-new', ...EC_KEY, '-keyout', key, '-out', csr, '-subj', subject], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-set_serial',
      `0x${crypto.randomBytes(12).toString('hex')}`,
      '-days',
      '3650',
      '-sha256',
      '-extfile',
      ext,
      '-out',
      cert,
    ],
    dir,
  );
  fs.rmSync(csr);
  fs.rmSync(ext);
  return { cert, key };
}

export function makePki(dir: string): Pki {
  fs.mkdirSync(dir, { recursive: true });
  const caCert = path.join(dir, 'ca.crt');
  const caKey = path.join(dir, 'ca.key');
  openssl(
    [
      'req',
      '-x509',
      ...EC_KEY,
      '-keyout',
      caKey,
      '-out',
      caCert,
      '-days',
      '3650',
      '-sha256',
      '-subj',
      '/CN=mailfleet-test-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ],
    dir,
  );
  const clientExt = [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=clientAuth',
  ];
  const server = issue(dir, 'apiserver', '/CN=kube-apiserver', [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,' +
      'DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1',
  ]);
  const clients = {
    admin: issue(dir, 'admin', '/O=system:masters/CN=mailfleet-admin', clientExt),
    'kube-controller-manager': issue(
      dir,
      'kube-controller-manager',
      '/O=system:masters/CN=system:kube-controller-manager',
      clientExt,
    ),
    'kube-scheduler': issue(dir, 'kube-scheduler', '/CN=system:kube-scheduler', clientExt),
    kwok: issue(dir, 'kwok', '/O=system:masters/CN=kwok', clientExt),
  };
  const saKey = path.join(dir, 'sa.key');
  const saPub = path.join(dir, 'sa.pub');
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', saKey], dir);
  openssl(['pkey', '-in', saKey, '-pubout', '-out', saPub], dir);
  return { dir, caCert, caKey, serverCert: server.cert, serverKey: server.key, saKey, saPub, clients };
}
