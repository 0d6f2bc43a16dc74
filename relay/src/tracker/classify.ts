// Human or machine: who fetched a pixel or followed a link. Privacy proxies fetch every image of a
// message when it arrives or is opened (Gmail's image proxy, Yahoo's), Apple Mail Privacy
// Protection fetches them in the background whether or not the message is read, and security
// scanners follow every link before the reader does. These are counted apart by the documented
// heuristics below (docs/tracking.md); they are estimates, not proof. Pure.

export type Reader = 'human' | 'machine';

/**
 * User agents of image proxies and link scanners, by product. Apple's MPP proxy sends a bare
 * "Mozilla/5.0" with nothing after it, which no mail client does.
 */
const MACHINE_AGENTS: readonly { name: string; pattern: RegExp }[] = [
  { name: 'gmail-image-proxy', pattern: /GoogleImageProxy|via ggpht\.com/i },
  { name: 'yahoo-mail-proxy', pattern: /YahooMailProxy/i },
  { name: 'apple-mpp', pattern: /^Mozilla\/5\.0$/ },
  {
    name: 'bot-or-scanner',
    pattern: /bot\b|crawler|spider|scanner|preview|Barracuda|Mimecast|Proofpoint|urldefense/i,
  },
  {
    name: 'http-library',
    pattern:
      /^(?:curl|wget|python-requests|python-urllib|go-http-client|java|okhttp|libwww-perl|node-fetch|axios)\b/i,
  },
];

/** Links of one message followed within this window make a burst: scanners follow every link at once. */
export const BURST_WINDOW_MS = 2000;
/** Distinct links of one message within BURST_WINDOW_MS from which the clicks are a scanner's. */
const BURST_LINKS = 3;

export interface Fetch {
  method: string;
  userAgent: string;
}

/** The product a user agent belongs to when it is a machine's, else undefined. */
function machineAgent(userAgent: string): string | undefined {
  if (userAgent.trim() === '') return 'no-user-agent';
  return MACHINE_AGENTS.find((a) => a.pattern.test(userAgent))?.name;
}

export function classifyOpen(fetch: Fetch): Reader {
  // A HEAD for an image is a link checker's, never a mail client's.
  return fetch.method === 'HEAD' || machineAgent(fetch.userAgent) ? 'machine' : 'human';
}

export function classifyClick(fetch: Fetch, linksInBurst: number): Reader {
  if (fetch.method === 'HEAD' || machineAgent(fetch.userAgent)) return 'machine';
  return linksInBurst >= BURST_LINKS ? 'machine' : 'human';
}

/**
 * Recent clicks per message, for the burst rule: message -> (link -> time). Bounded: the oldest
 * message is forgotten past `maxMessages` (a forgotten burst counts as human).
 */
export class RecentClicks {
  private readonly byMessage = new Map<string, Map<string, number>>();
  private readonly maxMessages: number;

  constructor(maxMessages = 10000) {
    this.maxMessages = maxMessages;
  }

  /** Records a click and returns how many distinct links of the message were clicked in the window. */
  record(messageKey: string, url: string, now: number): number {
    let links = this.byMessage.get(messageKey);
    if (links) this.byMessage.delete(messageKey);
    else links = new Map();
    this.byMessage.set(messageKey, links);
    for (const [u, at] of links) if (now - at > BURST_WINDOW_MS) links.delete(u);
    links.set(url, now);
    if (this.byMessage.size > this.maxMessages) this.byMessage.delete(this.byMessage.keys().next().value!);
    return links.size;
  }
}
