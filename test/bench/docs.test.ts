/**
 * The benchmark page's generator (bench/docs.ts): full runs only, the block
 * between the markers replaced and nothing else.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BEGIN,
  END,
  latestRunToTakeIn,
  newestResultFile,
  README_BEGIN,
  README_END,
  renderBenchmarkBlock,
  renderReadmeBlock,
  withBenchmarkBlock,
  type ResultFile,
} from '../../bench/docs.js';
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

  it('renders the README block: the same run, every target with its limit, what was measured and met or not', () => {
    const block = renderReadmeBlock(report, 'bench/results/x.json');
    expect(block.startsWith(README_BEGIN)).toBe(true);
    expect(block.endsWith(README_END)).toBe(true);
    expect(block).toContain('[`bench/results/x.json`](bench/results/x.json)');
    expect(block).toContain('| Target | issue | limit | measured | met |');
    for (const t of report.targets) expect(block).toContain(`| ${t.target} |`);
    expect(() => renderReadmeBlock({ ...report, mode: 'quick' }, 'x.json')).toThrow(/full runs only/);
    const page = `# R\n\n${README_BEGIN}\nold\n${README_END}\n`;
    expect(withBenchmarkBlock(page, `${README_BEGIN}\nnew\n${README_END}`, [README_BEGIN, README_END])).toBe(
      `# R\n\n${README_BEGIN}\nnew\n${README_END}\n`,
    );
  });

  it('puts what the previous committed run measured beside each target of the same name (before → after)', () => {
    const renamed = { ...report, targets: report.targets.map((t, i) => (i === 0 ? { ...t, target: 'a target added since' } : t)) };
    const block = renderReadmeBlock(renamed, 'bench/results/new.json', {
      report: { ...report, startedAt: '2026-01-02T03:04:05.000Z' },
      file: 'bench/results/old.json',
    });
    expect(block).toContain('| Target | issue | limit | previous run (2026-01-02 03:04 UTC) | measured | met |');
    expect(block).toContain('[`bench/results/old.json`](bench/results/old.json)');
    const second = report.targets[1];
    if (second !== undefined)
      expect(block).toContain(`| ${second.target} | ${second.issue ?? ''} | ${second.limit} | ${second.measured} | ${second.measured} |`);
    expect(block).toMatch(/^\| a target added since \| [^|]* \| [^|]* \| – \| /m);
  });

  it('takes in the run `npm run bench` just wrote only when it is a whole full run newer than the committed one', () => {
    const later = { ...report, startedAt: '2099-01-01T00:00:00.000Z' };
    expect(latestRunToTakeIn(later, report)).toBe(true);
    expect(latestRunToTakeIn(later, undefined)).toBe(true);
    expect(latestRunToTakeIn(report, later)).toBe(false);
    expect(latestRunToTakeIn({ ...later, mode: 'quick' }, report)).toBe(false);
    expect(latestRunToTakeIn({ ...later, settings: { ...later.settings, only: ['full-warm'] } }, report)).toBe(false);
    expect(latestRunToTakeIn(undefined, report)).toBe(false);
  });
});
