/**
 * Open realtime connections per client address on this node (MAX_CONNECTIONS_PER_ADDRESS),
 * both transports together: one address cannot hold every socket and buffer of a node.
 */
export class AddressSlots {
  private readonly open = new Map<string, number>();

  /** @param max 0: no cap. */
  constructor(private readonly max: number) {}

  /** Takes a slot for `address`; false when it already holds `max` (refuse the connection). */
  take(address: string): boolean {
    const held = this.open.get(address) ?? 0;
    if (this.max > 0 && held >= this.max) return false;
    this.open.set(address, held + 1);
    return true;
  }

  release(address: string): void {
    const held = this.open.get(address) ?? 0;
    if (held <= 1) this.open.delete(address);
    else this.open.set(address, held - 1);
  }
}
