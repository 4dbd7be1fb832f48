/**
 * The benchmark page's generator (bench/docs.ts): full runs only, the block
 * between the markers replaced and nothing else.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BEGIN, END, newestResultFile, renderBenchmarkBlock, withBenchmarkBlock, type ResultFile } from '../../bench/docs.js';
import { REPO_ROOT } from '../helpers/proxy-process.js';

const file = newestResultFile(REPO_ROOT);
const report = JSON.parse(readFileSync(file, 'utf8')) as ResultFile;

describe('bench/docs.ts', () => {
  it('names the result file, its date and duration, and says where a reconstructed file came from', () => {
    const block = renderBenchmarkBlock(report, 'bench/results/x.json');
    expect(block.startsWith(BEGIN)).toBe(true);
    expect(block.endsWith(END)).toBe(true);
    expect(block).toContain('[`bench/results/x.json`](../bench/results/x.json)');
    expect(block).toContain(`a full run started ${report.startedAt.slice(0, 16).replace('T', ' ')} UTC`);
    if (report.provenance !== undefined) expect(block).toContain(report.provenance);
  });

  it('refuses a quick run: the docs show full runs only', () => {
    expect(() => renderBenchmarkBlock({ ...report, mode: 'quick' }, 'x.json')).toThrow(/full runs only/);
  });

  it('replaces only what is between the markers', () => {
    const page = `# Title\n\nbefore\n\n${BEGIN}\nold\n${END}\n\nafter\n`;
    expect(withBenchmarkBlock(page, `${BEGIN}\nnew\n${END}`)).toBe(`# Title\n\nbefore\n\n${BEGIN}\nnew\n${END}\n\nafter\n`);
    expect(() => withBenchmarkBlock('# no markers\n', 'x')).toThrow(/markers/);
  });

  it('picks the newest dated result file', () => {
    expect(file.startsWith(join(REPO_ROOT, 'bench', 'results'))).toBe(true);
    expect(file).toMatch(/\d{4}-\d{2}-\d{2}[^/]*\.json$/);
  });
});
