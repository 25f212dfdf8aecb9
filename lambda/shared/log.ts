/**
 * Structured logs. Only identifiers and states are logged: never resource properties (they carry
 * environment values and hook payloads), tokens, or the pre-signed ResponseURL.
 */
export function log(message: string, fields: Record<string, unknown> = {}): void {
  if (process.env.MICROVMS_HANDLER_QUIET === '1') return;
  console.log(JSON.stringify({ message, ...fields }));
}
