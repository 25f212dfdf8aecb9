/** Injected faults: what the tests ask for, and how the families consume them. */
import { BUILD_FAILURE_MESSAGES } from './settings';

// ---------------------------------------------------------------------------------------------------
// Faults

export interface BuildFailureFault {
  imageName: string;
  reasonCode: string;
  message?: string;
  count?: number;
}
export interface ConnectorFailureFault {
  operation: 'create' | 'update';
  /** Connector name (create) or name/Id (update); omitted = the next one of any name. */
  name?: string;
  reasonCode: string;
  reason?: string;
  count?: number;
}
export interface OperationFault {
  operation: string;
  mode: 'throttle' | 'error';
  /** Apply to the next N calls (default 1 unless `fraction` is given). */
  count?: number;
  /** Apply to this fraction (0–1] of calls until cleared. */
  fraction?: number;
  errorType?: string;
  message?: string;
  status?: number;
}
export interface EventualConsistencyFault {
  ms: number;
  kinds?: ('image' | 'microvm' | 'connector')[];
}

export interface Faults {
  buildFailures: (BuildFailureFault & { remaining: number })[];
  connectorFailures: (ConnectorFailureFault & { remaining: number })[];
  operations: (OperationFault & { remaining: number })[];
  eventualConsistency?: EventualConsistencyFault;
}

/** The next build failure injected for this image, consumed. */
export function takeBuildFailure(faults: Faults, imageName: string): { code: string; message: string } | undefined {
  const i = faults.buildFailures.findIndex((f) => f.imageName === imageName && f.remaining > 0);
  if (i < 0) return undefined;
  const f = faults.buildFailures[i];
  f.remaining--;
  if (f.remaining <= 0) faults.buildFailures.splice(i, 1);
  return { code: f.reasonCode, message: f.message ?? BUILD_FAILURE_MESSAGES[f.reasonCode] ?? 'The build failed.' };
}

/** The next connector create/update failure injected for one of these names, consumed. */
export function takeConnectorFailure(faults: Faults, operation: 'create' | 'update', names: string[]): { code: string; reason: string } | undefined {
  const i = faults.connectorFailures.findIndex(
    (f) => f.operation === operation && f.remaining > 0 && (f.name === undefined || names.includes(f.name)),
  );
  if (i < 0) return undefined;
  const f = faults.connectorFailures[i];
  f.remaining--;
  if (f.remaining <= 0) faults.connectorFailures.splice(i, 1);
  return { code: f.reasonCode, reason: f.reason ?? `Network connector ${operation} failed: ${f.reasonCode}` };
}

/** Whether injected eventual consistency still hides a resource created at `createdAt`. */
export function hiddenByConsistency(faults: Faults, now: number, kind: 'image' | 'microvm' | 'connector', createdAt: number): boolean {
  const ec = faults.eventualConsistency;
  if (!ec || ec.ms <= 0) return false;
  if (ec.kinds && !ec.kinds.includes(kind)) return false;
  return now - createdAt < ec.ms;
}
