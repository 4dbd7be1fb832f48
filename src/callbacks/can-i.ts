/**
 * `kube-vertex-proxy can-i --config FILE --as-google EMAIL METHOD PATH`: the
 * decision the running proxy would make for a callback (the same route
 * table, path checks and caller matching as the data path). Exit 0 allowed,
 * 1 denied (caller not listed, method not allowed on the route), 2 when the
 * question is malformed (bad path, no route serves it, bad flags).
 *
 * In: the config and the question. Out: a short report on stdout, the exit code.
 *
 * @module
 */
import type { Settings } from '../config/load.js';
import { ProxyError } from '../errors.js';
import type { CallbackRoute } from './routes.js';

/** `--as-google` names an email, or an account unique id (`sub`, digits only). */
export function googleIdentityOf(value: string): { email: string; subject: string } {
  return /^[0-9]{1,32}$/.test(value) ? { email: '', subject: value } : { email: value, subject: '' };
}

export function canICallback(settings: Settings, asGoogle: string, method: string, path: string, write: (text: string) => void): number {
  const identity = googleIdentityOf(asGoogle);
  let route: CallbackRoute | undefined;
  let target: string;
  try {
    ({ route, target } = settings.callbacks.routes.match(method, path, (r) => (route = r)));
  } catch (error) {
    if (!(error instanceof ProxyError)) throw error;
    const denied = error.code === 'ERR_REQUEST_METHOD_NOT_ALLOWED';
    write(`${denied ? 'denied' : 'invalid'}: ${error.message} (${error.code}, HTTP ${error.httpStatus})\n`);
    return denied ? 1 : 2;
  }
  const entry = route.callers.match(identity);
  const lines = [
    entry === undefined ? 'denied' : 'allowed',
    `  caller:    ${asGoogle} (Google ID token${identity.email === '' ? ', by unique id' : ''})`,
    `  route:     ${route.prefix} (methods ${[...route.methods].join(', ')}; body ≤ ${route.bodyLimitBytes} bytes; timeout ` +
      `${route.timeoutMs / 1000}s)`,
    `  callers:   ${entry === undefined ? `(not listed: ${route.callerEntries.join(', ')})` : `matched by ${entry}`}`,
    `  forwards:  ${method} ${target}`,
    `  assertion: ${settings.callbacks.assertion.header} (aud ${route.audience}, iss ${settings.callbacks.assertion.issuer}` +
      `, ${settings.callbacks.assertion.lifetimeSec}s)`,
  ];
  write(`${lines.join('\n')}\n`);
  return entry === undefined ? 1 : 0;
}
