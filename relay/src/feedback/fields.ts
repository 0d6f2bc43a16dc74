// The "header-like" field blocks of RFC 3464 (message/delivery-status) and RFC 5965
// (message/feedback-report): groups of `Name: value` lines, continued by lines starting with
// white space, groups separated by blank lines. Pure, and total: any input gives some groups.

/** One group: lower-cased field name -> values in order (ARF repeats some fields). */
export type FieldGroup = Map<string, string[]>;

export function fieldGroups(text: string): FieldGroup[] {
  const groups: FieldGroup[] = [];
  let current: FieldGroup | undefined;
  let last: { name: string; index: number } | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') {
      current = undefined;
      last = undefined;
      continue;
    }
    if (/^[ \t]/.test(line) && current && last) {
      const values = current.get(last.name)!;
      values[last.index] = `${values[last.index]} ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!/^[a-z0-9-]+$/.test(name)) continue;
    if (!current) {
      current = new Map();
      groups.push(current);
    }
    const values = current.get(name) ?? [];
    values.push(line.slice(colon + 1).trim());
    current.set(name, values);
    last = { name, index: values.length - 1 };
  }
  return groups;
}

export const first = (group: FieldGroup | undefined, name: string): string | undefined =>
  group?.get(name)?.[0];

/** `rfc822; user@example.org` -> `user@example.org` (RFC 3464 §2.3.2 address-type prefix). */
export function typedAddress(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const semi = value.indexOf(';');
  const address = (semi >= 0 ? value.slice(semi + 1) : value).trim().replace(/^<|>$/g, '');
  return address || undefined;
}
