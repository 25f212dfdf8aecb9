/**
 * A resource's future, precomputed: an ordered list of (state, enteredAt) segments. Reading the state at
 * time `t` picks the last segment that has started, so transitions need no timers. A hold freezes the
 * timeline at the moment it was placed; releasing it shifts every not-yet-reached segment by the held time.
 */
export interface Segment<S extends string = string> {
  state: S;
  at: number;
  reason?: string | null;
  code?: string | null;
}

export class Timeline<S extends string = string> {
  segs: Segment<S>[];
  heldAt?: number;

  constructor(first: Segment<S>) {
    this.segs = [first];
  }

  /** The segment current at time t. */
  at(t: number): Segment<S> {
    const eff = this.heldAt !== undefined ? Math.min(t, this.heldAt) : t;
    let cur = this.segs[0];
    for (const s of this.segs) {
      if (s.at <= eff) cur = s;
      else break;
    }
    return cur;
  }

  state(t: number): S {
    return this.at(t).state;
  }

  /** Drops every segment that starts after t (the future is replanned by the caller). */
  truncate(t: number): this {
    this.release(t);
    this.segs = this.segs.filter((s, i) => i === 0 || s.at <= t);
    return this;
  }

  push(seg: Segment<S>): this {
    const last = this.segs[this.segs.length - 1];
    if (seg.at < last.at) seg = { ...seg, at: last.at };
    this.segs.push(seg);
    return this;
  }

  /** First time the timeline enters `state` (or undefined). */
  firstAt(state: S): number | undefined {
    return this.segs.find((s) => s.state === state)?.at;
  }

  /** True while a later segment is still to come (the resource is in a transient state). */
  pending(t: number): boolean {
    const eff = this.heldAt !== undefined ? Math.min(t, this.heldAt) : t;
    return this.segs.some((s) => s.at > eff) || this.heldAt !== undefined;
  }

  hold(t: number): void {
    if (this.heldAt === undefined) this.heldAt = t;
  }

  get held(): boolean {
    return this.heldAt !== undefined;
  }

  release(t: number): void {
    if (this.heldAt === undefined) return;
    const shift = Math.max(0, t - this.heldAt);
    const heldAt = this.heldAt;
    for (const s of this.segs) if (s.at > heldAt) s.at += shift;
    this.heldAt = undefined;
  }
}
