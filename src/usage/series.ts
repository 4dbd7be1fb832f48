/**
 * The cardinality bound of the usage and limit metrics: each metric keeps at
 * most `maxSeries` distinct label sets. A new label set beyond that has its
 * identity labels (`namespace`, `service_account`) replaced by `other`; those
 * folded sets are bounded by `maxSeries` too, and beyond that the `model`
 * becomes `other` as well (model names come from request paths, so a caller
 * could otherwise mint series at will). A metric therefore has at most about
 * twice `maxSeries` series. Every folded observation is counted.
 *
 * @module
 */

export type IdentityLabel = 'namespace' | 'service_account';

export const FOLDED = 'other';

export class SeriesGuard {
  readonly #seen = new Set<string>();
  readonly #folded = new Set<string>();
  readonly #max: number;
  readonly #onFold: () => void;

  constructor(maxSeries: number, onFold: () => void) {
    this.#max = maxSeries;
    this.#onFold = onFold;
  }

  /** The labels to record under: `labels` itself while within the bound, else folded. */
  admit<L extends Record<string, string>>(labels: L, identity: readonly IdentityLabel[], modelLabel?: keyof L): L {
    const key = keyOf(labels);
    if (this.#seen.has(key)) return labels;
    if (this.#seen.size < this.#max) {
      this.#seen.add(key);
      return labels;
    }
    this.#onFold();
    const folded: Record<string, string> = { ...labels };
    for (const name of identity) if (name in folded) folded[name] = FOLDED;
    const foldedKey = keyOf(folded);
    if (this.#seen.has(foldedKey) || this.#folded.has(foldedKey) || modelLabel === undefined) return folded as L;
    if (this.#folded.size < this.#max) {
      this.#folded.add(foldedKey);
      return folded as L;
    }
    folded[modelLabel as string] = FOLDED;
    return folded as L;
  }
}

function keyOf(labels: Record<string, string>): string {
  let key = '';
  for (const name of Object.keys(labels).sort()) key += `${name}\u0000${labels[name]}\u0001`;
  return key;
}
