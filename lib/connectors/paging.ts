import { createHash } from 'node:crypto';
import { badResponse } from './errors.ts';

/**
 * Watches a paged read for the two ways an upstream can trap a client: a page that repeats (the same rows, or
 * the same next link, again: following it would loop forever) and an empty page that still promises more.
 * Both end the read with UPSTREAM_BAD_RESPONSE; what was read before stays usable (the sync reports PARTIAL).
 */
export class PageGuard {
  private seenPages = new Set<string>();
  private seenLinks = new Set<string>();
  private pages = 0;

  constructor(
    private readonly system: string,
    private readonly maxPages = 10_000,
  ) {}

  /** Call once per page with the keys of its rows and whether the upstream says there is more. */
  page(keys: readonly string[], morePromised: boolean): void {
    this.pages++;
    if (this.pages > this.maxPages) throw badResponse(this.system, `paging did not end after ${this.maxPages} pages`);
    if (keys.length === 0) {
      if (morePromised) throw badResponse(this.system, `page ${this.pages} is empty but more pages are promised`);
      return;
    }
    const digest = createHash('sha1').update(keys.join('\u0000')).digest('hex');
    if (this.seenPages.has(digest)) throw badResponse(this.system, `page ${this.pages} repeats an earlier page`);
    this.seenPages.add(digest);
  }

  /** Call with each next link before following it. */
  link(url: string): void {
    if (this.seenLinks.has(url)) throw badResponse(this.system, 'the next-page link repeats an earlier one');
    this.seenLinks.add(url);
  }
}
