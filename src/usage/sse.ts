/**
 * Server-sent events framing, incrementally: the payload of every `data:`
 * line goes to a {@link JsonScanner}, which is reset at the blank line that
 * ends an event (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
 * Only the field name at the start of a line is held (at most 5 bytes);
 * payloads are passed through as they arrive.
 *
 * Line ends are LF or CRLF (what Vertex AI and the OpenAI-compatible endpoint
 * send); a lone CR as a line end is not recognised.
 *
 * Most events cannot carry usage (Vertex AI reports it in the last event of
 * a stream). Whole events at the start of a chunk that hold no quoted name of
 * a wanted key are skipped with a few native searches over the chunk, not
 * looked at line by line; after that, a `data:` line that arrived whole in one
 * chunk and does not contain the quoted name of a wanted key is skipped
 * after one native search, instead of being scanned byte by byte. This
 * relies on each event being one `data:` line (both APIs send JSON on one
 * line); an event split over several `data:` lines is scanned whole unless
 * its first line was skipped, in which case the rest of it is skipped too.
 *
 * @module
 */
import type { JsonScanner } from './json-scanner.js';

const LF = 0x0a;
const CR = 0x0d;
const DATA = Buffer.from('data:');
/**
 * Where the last event that ends before `before` ends in `buf` (just past the
 * blank line that closes it), or 0. Walks back line by line (one-byte
 * searches): the blank line is usually one or two lines back.
 */
function lastEventEnd(buf: Buffer, before: number): number {
  let at = before - 1;
  while (at > 0) {
    const lf = buf.lastIndexOf(LF, at);
    if (lf <= 0) return 0;
    // A line end right after another line end (LF LF or LF CR LF) is a blank line.
    if (buf[lf - 1] === LF || (buf[lf - 1] === CR && lf >= 2 && buf[lf - 2] === LF)) return lf + 1;
    at = lf - 1;
  }
  return 0;
}

export class SseScanner {
  readonly #json: JsonScanner;
  /** At the start of a line, collecting the field name. */
  #atLineStart = true;
  #prefix = 0;
  /** The bytes of this line so far are only `\r` (or nothing): a blank line ends the event. */
  #blank = true;
  /** In a `data:` line's payload. */
  #inData = false;
  /** Right after `data:`: one leading space is not part of the payload. */
  #skipSpace = false;
  /** The current data line is scanned (it did not arrive whole, or it may hold a wanted key). */
  #scanning = false;
  /** A data line of the current event was skipped: the JSON scanner has not seen the event's start. */
  #eventSkipped = false;
  /** Whether this data line's fate (scan or skip) is settled. */
  #decided = false;
  /** A line of the current event has begun: not at an event boundary. */
  #inEvent = false;

  constructor(json: JsonScanner) {
    this.#json = json;
  }

  push(buf: Buffer): void {
    const n = buf.length;
    const wholeEventsEnd = lastEventEnd(buf, n);
    let i = this.#atLineStart && this.#prefix === 0 && !this.#inEvent ? this.#skipEvents(buf, 0, wholeEventsEnd) : 0;
    while (i < n) {
      if (this.#inData) {
        const lf = buf.indexOf(LF, i);
        const end = lf === -1 ? n : lf;
        let from = i;
        if (this.#skipSpace && from < end) {
          this.#skipSpace = false;
          if (buf[from] === 0x20) from += 1;
        }
        if (!this.#skipSpace && !this.#scanning && !this.#decided) {
          // First payload bytes of this line: a whole line without a wanted key is skipped.
          this.#decided = true;
          this.#scanning = !this.#eventSkipped && (lf === -1 || this.#json.mayMatch(buf, from, end));
          if (!this.#scanning) this.#eventSkipped = true;
        }
        if (this.#scanning && from < end) this.#json.push(buf, from, end);
        if (lf === -1) return;
        this.#newLine();
        i = end + 1;
        continue;
      }
      if (this.#atLineStart) {
        const c = buf[i] as number;
        if (c === LF) {
          const ended = this.#blank;
          if (ended) this.#endEvent();
          this.#newLine();
          i += 1;
          if (ended && i < wholeEventsEnd) i = this.#skipEvents(buf, i, wholeEventsEnd);
          continue;
        }
        if (c === CR && this.#prefix === 0) {
          i += 1;
          continue;
        }
        this.#blank = false;
        this.#inEvent = true;
        if (c === DATA[this.#prefix]) {
          this.#prefix += 1;
          i += 1;
          if (this.#prefix === DATA.length) {
            this.#atLineStart = false;
            this.#inData = true;
            this.#skipSpace = true;
          }
          continue;
        }
        // Another field (event:, id:, retry:) or a comment: skip the line.
        this.#atLineStart = false;
      }
      const end = buf.indexOf(LF, i);
      if (end === -1) return;
      this.#newLine();
      i = end + 1;
    }
  }

  /** The stream ended: an event not closed by a blank line still counts. */
  end(): void {
    this.#endEvent();
  }

  #endEvent(): void {
    if (!this.#eventSkipped) this.#json.end();
    this.#json.reset();
    this.#eventSkipped = false;
    this.#inEvent = false;
  }

  /**
   * At an event boundary (`from`): where to go on from, past the whole
   * events before `end` that hold no wanted key (they cannot yield a value,
   * so they are not looked at): to the start of the event that holds the
   * first wanted key, or to `end`.
   */
  #skipEvents(buf: Buffer, from: number, end: number): number {
    if (end <= from) return from;
    const hit = this.#json.firstMatch(buf, from, end);
    if (hit === -1) return end;
    return Math.max(from, lastEventEnd(buf, hit));
  }

  #newLine(): void {
    this.#atLineStart = true;
    this.#prefix = 0;
    this.#blank = true;
    this.#inData = false;
    this.#skipSpace = false;
    this.#scanning = false;
    this.#decided = false;
  }
}
