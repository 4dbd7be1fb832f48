/**
 * Batched, synchronous writing of JSON lines to a file descriptor (stdout):
 * lines written during one turn of the event loop leave in one `write(2)` at
 * the end of that turn, instead of one system call per line. Log lines and
 * audit lines share one writer, so they keep their order and are never
 * interleaved mid-line.
 *
 * Nothing is lost on a graceful stop: {@link LineWriter.flush} writes what is
 * pending synchronously, and so does process exit. At most one turn's lines
 * (and never more than {@link FLUSH_AT_CHARS}) are pending at any time. No
 * fsync: stdout is a pipe or a container log file, as it was before.
 *
 * In: a file descriptor. Out: a pino-compatible destination. A write error
 * other than a full non-blocking pipe (EAGAIN, retried) is thrown from the
 * flush, as a synchronous `process.stdout.write` would throw it.
 *
 * @module
 */
import { writeSync } from 'node:fs';

export interface LineWriter {
  /** Queues text (one or more whole lines) for the end of this event-loop turn. */
  write(text: string): boolean;
  /** Writes everything pending now. */
  flush(): void;
}

/** A turn that produces more than this writes early, so the buffer stays small. */
export const FLUSH_AT_CHARS = 64 * 1024;

const pause = new Int32Array(new SharedArrayBuffer(4));

function writeAll(fd: number, data: Buffer): void {
  let offset = 0;
  while (offset < data.length) {
    try {
      offset += writeSync(fd, data, offset, data.length - offset);
    } catch (error) {
      // stdout may be a non-blocking pipe whose reader is behind: wait for it rather than drop a line.
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

export function createLineWriter(fd = 1): LineWriter {
  let pending = '';
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending === '') return;
    const data = Buffer.from(pending, 'utf8');
    pending = '';
    writeAll(fd, data);
  };
  process.once('exit', () => {
    try {
      flush();
    } catch {
      // The descriptor is gone; nothing left to write to.
    }
  });
  return {
    write(text: string): boolean {
      pending += text;
      if (pending.length >= FLUSH_AT_CHARS) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
      return true;
    },
    flush,
  };
}
