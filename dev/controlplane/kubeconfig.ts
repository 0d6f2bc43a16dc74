// Kubeconfig files (JSON is valid kubeconfig YAML).
import fs from 'node:fs';
import path from 'node:path';

export function b64(file: string): string {
  return fs.readFileSync(file).toString('base64');
}

export function writeKubeconfig(
  file: string,
  server: string,
  caData: string,
  user: { clientCertificateData?: string; clientKeyData?: string; token?: string },
  name = 'mailfleet-test',
): void {
  const userEntry: Record<string, string> = {};
  if (user.clientCertificateData) userEntry['client-certificate-data'] = user.clientCertificateData;
  if (user.clientKeyData) userEntry['client-key-data'] = user.clientKeyData;
  if (user.token) userEntry.token = user.token;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server, 'certificate-authority-data': caData } }],
    users: [{ name, user: userEntry }],
    contexts: [{ name, context: { cluster: name, user: name, namespace: 'default' } }],
    'current-context': name,
    preferences: {},
  };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
}
