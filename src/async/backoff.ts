/**
 * When to try a failed webhook delivery again (DESIGN §1.5). Pure arithmetic, no clock reads:
 * callers pass `now` and the random source, so tests are exact.
 *
 * - `retryDelayMs` reads the configured schedule (`FERRY_RETRY_SCHEDULE`, milliseconds here):
 *   entry x is when retry x happens, counted from the first failure (the original platform's
 *   4^x seconds, x = 1..9). Each entry is spread by ±jitter so that many notifications failing at
 *   the same instant (a receiver outage) do not all come back at the same instant.
 * - `parseRetryAfter` reads a receiver's `Retry-After` (delay-seconds or HTTP-date). It is capped
 *   so a hostile or buggy receiver cannot park a notification for years; how it combines with
 *   the schedule is the sender's decision.
 */

/** The longest `Retry-After` Ferry honours: 24 hours. */
export const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;

/**
 * The delay for retry number `attempt` (1 = the first retry after the first failure), or null when
 * the schedule has no such entry and retries have run out. `jitter` 0.2 spreads the entry
 * uniformly over ±20 %; `random` returns a number in [0, 1).
 */
export function retryDelayMs(
  attempt: number,
  scheduleMs: number[],
  jitter: number,
  random: () => number = Math.random,
): number | null {
  if (!Number.isInteger(attempt) || attempt < 1) throw new RangeError('attempt must be an integer ≥ 1');
  if (!(jitter >= 0 && jitter < 1)) throw new RangeError('jitter must be in [0, 1)');
  const base = scheduleMs[attempt - 1];
  if (base === undefined) return null;
  const spread = 1 + jitter * (2 * random() - 1);
  return Math.max(0, Math.round(base * spread));
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

// The three HTTP-date forms of RFC 9110 §5.6.7; Date.parse alone would accept things like "1".
const IMF_FIXDATE = /^[a-z]{3}, (\d{2}) ([a-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) gmt$/i;
const RFC850_DATE = /^[a-z]{6,9}, (\d{2})-([a-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) gmt$/i;
const ASCTIME_DATE = /^[a-z]{3} ([a-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/i;

function utc(year: number, month: string, day: number, h: number, m: number, s: number): number | null {
  const mon = MONTHS.indexOf(month.toLowerCase());
  if (mon < 0 || day < 1 || day > 31 || h > 23 || m > 59 || s > 60) return null;
  const t = Date.UTC(year, mon, day, h, m, Math.min(s, 59));
  // Reject dates Date.UTC silently rolled over (31 Feb → 3 Mar).
  return new Date(t).getUTCDate() === day ? t : null;
}

function parseHttpDate(value: string, now: Date): number | null {
  let m = IMF_FIXDATE.exec(value);
  if (m) return utc(Number(m[3]), m[2], Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  m = RFC850_DATE.exec(value);
  if (m) {
    // Two-digit years: RFC 9110 says pick the year that is not more than 50 years in the future.
    const yy = Number(m[3]);
    const nowYear = now.getUTCFullYear();
    let year = Math.floor(nowYear / 100) * 100 + yy;
    if (year > nowYear + 50) year -= 100;
    return utc(year, m[2], Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  m = ASCTIME_DATE.exec(value);
  if (m) return utc(Number(m[6]), m[1], Number(m[2].trim()), Number(m[3]), Number(m[4]), Number(m[5]));
  return null;
}

/**
 * A `Retry-After` header as milliseconds from `now`: delay-seconds (`120`) or an HTTP-date
 * (`Wed, 21 Oct 2015 07:28:00 GMT`; a past date means 0). Capped at 24 h; absent, empty or
 * malformed → null (the caller falls back to its schedule).
 */
export function parseRetryAfter(header: string | undefined, now: Date): number | null {
  if (header === undefined) return null;
  const value = header.trim();
  if (value === '') return null;
  if (/^\d+$/.test(value)) return Math.min(Number(value) * 1000, MAX_RETRY_AFTER_MS);
  const at = parseHttpDate(value, now);
  if (at === null) return null;
  return Math.min(Math.max(0, at - now.getTime()), MAX_RETRY_AFTER_MS);
}
