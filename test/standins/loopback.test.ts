import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ephemeralRangeStart, freeLoopbackPort } from '../../dev/standins/loopback.js';

const listen = (port: number) =>
  new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });

describe('freeLoopbackPort', () => {
  it('reads where the kernel ephemeral range starts (Linux)', () => {
    expect(process.platform).toBe('linux');
    expect(ephemeralRangeStart()).toBeGreaterThan(20_000);
  });

  it('hands out a port below the ephemeral range, where no outgoing connection takes its local port, and free to bind', async () => {
    const rangeStart = ephemeralRangeStart() as number;
    for (let i = 0; i < 20; i++) {
      const port = await freeLoopbackPort();
      expect(port).toBeGreaterThanOrEqual(20_000);
      expect(port).toBeLessThan(rangeStart);
      await listen(port);
    }
  });

  it('does not hand out the same port twice before either is bound', async () => {
    const ports = [];
    // 1,000 random draws from some 12,000 ports would repeat one almost surely without the record of recent ones.
    for (let i = 0; i < 1000; i++) ports.push(await freeLoopbackPort());
    expect(new Set(ports).size).toBe(ports.length);
  });
});
