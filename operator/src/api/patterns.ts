// Regular expressions shared by the CRD schemas and the operator's own checks (RE2-compatible,
// because the API server evaluates them with Go's regexp).
const label = '[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?';
/** A mail domain: lower-case DNS name with at least two labels (example.com). */
export const domainPattern = `^(${label}\\.)+${label}$`;
/** A recipient/sender domain match: an exact domain or `*.` followed by a domain. */
export const domainMatchPattern = `^(\\*\\.)?(${label}\\.)+${label}$`;
/** A host name or IPv4 address for a smarthost. */
export const hostPattern = `^(${label})(\\.${label})*$|^[0-9.]+$|^[0-9a-fA-F:]+$`;
/** A certificate DNS name: lower-case labels, optionally after `*.` (svc.ns.svc, *.mail.example.com). */
export const tlsNamePattern = `^(\\*\\.)?${label}(\\.${label})*$`;
/** A Kubernetes object name (DNS-1123 subdomain). */
export const objectNamePattern = `^${label}(\\.${label})*$`;
/** A DKIM selector: one or more DNS labels. */
export const selectorPattern = `^${label}(\\.${label})*$`;
/** A duration such as 30s, 5m, 1h30m or 5d. */
export const durationPattern = '^([0-9]+(ms|s|m|h|d))+$';
/** A Kubernetes quantity for sizes: 25Mi, 10Gi, 1000000. */
export const quantityPattern = '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$';
const octet = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
/** An IPv4 or IPv6 CIDR; the API server also checks it with CEL isCIDR(). */
export const cidrPattern = `^(${octet}\\.){3}${octet}/(3[0-2]|[12]?[0-9])$|^[0-9a-fA-F:]*:[0-9a-fA-F:.]*/(12[0-8]|1[01][0-9]|[1-9]?[0-9])$`;
/** A sender address: local@domain, without routing characters. */
export const addressPattern = `^[^@%!\\s"<>]+@(${label}\\.)+${label}$`;
