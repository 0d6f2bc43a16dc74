// X.509 behind the CertificateIssuer interface: a pool's CA and its serving certificates, with
// ECDSA P-256 keys. Node can parse certificates but not build them, so the DER structure comes from
// @peculiar/asn1-x509 and the signing from node:crypto. Key generation and signing run on libuv's
// thread pool (the callback forms), so issuing a certificate does not hold the event loop.
import { createHash, createPrivateKey, generateKeyPair, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import * as asn from '@peculiar/asn1-x509';
import type { CertificateIssuer, CertificateRequest, PemPair } from '../desired/types.ts';

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const COMMON_NAME = '2.5.4.3';

function generateEcKeyPair(): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  return new Promise((resolve, reject) =>
    generateKeyPair('ec', { namedCurve: 'P-256' }, (error, publicKey, privateKey) =>
      error ? reject(error) : resolve({ publicKey, privateKey }),
    ),
  );
}

function signAsync(data: Buffer, key: KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    sign('sha256', data, { key, dsaEncoding: 'der' }, (error, signature) =>
      error ? reject(error) : resolve(signature),
    ),
  );
}

function name(commonName: string): asn.Name {
  return new asn.Name([
    new asn.RelativeDistinguishedName([
      new asn.AttributeTypeAndValue({
        type: COMMON_NAME,
        value: new asn.AttributeValue({ utf8String: commonName }),
      }),
    ]),
  ]);
}

function extension(extnID: string, critical: boolean, value: unknown): asn.Extension {
  return new asn.Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
function keyIdentifier(spki: asn.SubjectPublicKeyInfo): ArrayBuffer {
  const digest = createHash('sha1').update(Buffer.from(spki.subjectPublicKey)).digest();
  return new Uint8Array(digest).buffer;
}

/** A positive 128-bit serial number (RFC 5280 4.1.2.2: at most 20 octets, non-negative). */
function serialNumber(): ArrayBuffer {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return new Uint8Array(bytes).buffer;
}

const pem = (label: string, der: Buffer) =>
  `-----BEGIN ${label}-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END ${label}-----\n`;

function fromPem(text: string): Buffer {
  return Buffer.from(text.replace(/-----(BEGIN|END) [A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

async function build(o: {
  request: CertificateRequest;
  subjectKey: KeyObject;
  issuer: asn.Name;
  signingKey: KeyObject;
  authorityKeyId: ArrayBuffer;
  extensions: asn.Extension[];
}): Promise<string> {
  const spki = AsnConvert.parse(
    o.subjectKey.export({ type: 'spki', format: 'der' }),
    asn.SubjectPublicKeyInfo,
  );
  const algorithm = new asn.AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 });
  const tbs = new asn.TBSCertificate({
    version: asn.Version.v3,
    serialNumber: serialNumber(),
    signature: algorithm,
    issuer: o.issuer,
    subject: name(o.request.commonName),
    validity: new asn.Validity({ notBefore: o.request.notBefore, notAfter: o.request.notAfter }),
    subjectPublicKeyInfo: spki,
    extensions: new asn.Extensions([
      ...o.extensions,
      extension(asn.id_ce_subjectKeyIdentifier, false, new asn.SubjectKeyIdentifier(keyIdentifier(spki))),
      extension(
        asn.id_ce_authorityKeyIdentifier,
        false,
        new asn.AuthorityKeyIdentifier({ keyIdentifier: new asn.KeyIdentifier(o.authorityKeyId) }),
      ),
    ]),
  });
  const signature = await signAsync(Buffer.from(AsnConvert.serialize(tbs)), o.signingKey);
  const certificate = new asn.Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: algorithm,
    signatureValue: new Uint8Array(signature).buffer,
  });
  return pem('CERTIFICATE', Buffer.from(AsnConvert.serialize(certificate)));
}

const keyPem = (key: KeyObject) => key.export({ type: 'pkcs8', format: 'pem' }).toString();

/** A self-signed CA that may sign serving certificates only (pathLen 0). */
export async function issueCA(request: CertificateRequest): Promise<PemPair> {
  const keys = await generateEcKeyPair();
  const spki = AsnConvert.parse(
    keys.publicKey.export({ type: 'spki', format: 'der' }),
    asn.SubjectPublicKeyInfo,
  );
  const cert = await build({
    request,
    subjectKey: keys.publicKey,
    issuer: name(request.commonName),
    signingKey: keys.privateKey,
    authorityKeyId: keyIdentifier(spki),
    extensions: [
      extension(
        asn.id_ce_basicConstraints,
        true,
        new asn.BasicConstraints({ cA: true, pathLenConstraint: 0 }),
      ),
      extension(
        asn.id_ce_keyUsage,
        true,
        new asn.KeyUsage(asn.KeyUsageFlags.keyCertSign | asn.KeyUsageFlags.cRLSign),
      ),
    ],
  });
  return { cert, key: keyPem(keys.privateKey) };
}

/** A TLS server certificate for request.dnsNames, signed by the CA. */
export async function issueServing(request: CertificateRequest, ca: PemPair): Promise<PemPair> {
  const caCert = AsnConvert.parse(fromPem(ca.cert), asn.Certificate);
  const keys = await generateEcKeyPair();
  const cert = await build({
    request,
    subjectKey: keys.publicKey,
    issuer: caCert.tbsCertificate.subject,
    signingKey: createPrivateKey(ca.key),
    authorityKeyId: keyIdentifier(caCert.tbsCertificate.subjectPublicKeyInfo),
    extensions: [
      extension(asn.id_ce_basicConstraints, true, new asn.BasicConstraints({ cA: false })),
      extension(asn.id_ce_keyUsage, true, new asn.KeyUsage(asn.KeyUsageFlags.digitalSignature)),
      extension(asn.id_ce_extKeyUsage, false, new asn.ExtendedKeyUsage([asn.id_kp_serverAuth])),
      extension(
        asn.id_ce_subjectAltName,
        false,
        new asn.SubjectAlternativeName(request.dnsNames.map((dNSName) => new asn.GeneralName({ dNSName }))),
      ),
    ],
  });
  return { cert, key: keyPem(keys.privateKey) };
}

export const certificateIssuer: CertificateIssuer = { ca: issueCA, serving: issueServing };
