// CIDR lists as a matcher. Built once per config (BlockList is immutable once filled).
import { BlockList, isIPv4 } from 'node:net';

export interface NetworkMatcher {
  has(address: string): boolean;
}

export function networkMatcher(cidrs: readonly string[]): NetworkMatcher {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address = '', prefix] = cidr.split('/');
    const type = isIPv4(address) ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return {
    has(address: string): boolean {
      // IPv4 clients on a dual-stack socket appear as ::ffff:a.b.c.d.
      const plain = address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
      return list.check(plain, isIPv4(plain) ? 'ipv4' : 'ipv6');
    },
  };
}
