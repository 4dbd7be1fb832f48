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
 * Most events cannot carry usage: a `data:` line that arrived whole in one
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

  constructor(json: JsonScanner) {
    this.#json = json;
  }

  push(buf: Buffer): void {
    let i = 0;
    const n = buf.length;
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
          if (this.#blank) this.#endEvent();
          this.#newLine();
          i += 1;
          continue;
        }
        if (c === CR && this.#prefix === 0) {
          i += 1;
          continue;
        }
        this.#blank = false;
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
