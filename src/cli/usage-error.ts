/**
 * A mistake in the command line (an unknown flag, a missing value, a value of
 * the wrong form). Commands throw it; `main` prints it with the command's name
 * and exits 2, in one place.
 *
 * @module
 */
export class UsageError extends Error {}
