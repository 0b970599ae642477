// Hand-built packets for the trace tests: every byte written here, checksums left zero.
export const ip4 = (s: string): number[] => s.split('.').map(Number);
const u16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff];
const u32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

export function tcp(sport: number, dport: number, seq: number, ack: number, flags: number, payload: number[] = []): number[] {
  return [...u16(sport), ...u16(dport), ...u32(seq), ...u32(ack), 5 << 4, flags, ...u16(64240), 0, 0, 0, 0, ...payload];
}

export function udp(sport: number, dport: number, payload: number[]): number[] {
  return [...u16(sport), ...u16(dport), ...u16(8 + payload.length), 0, 0, ...payload];
}

export function ipv4(src: string, dst: string, id: number, proto: number, l4: number[], ttl = 64): number[] {
  return [0x45, 0, ...u16(20 + l4.length), ...u16(id), 0x40, 0, ttl, proto, 0, 0, ...ip4(src), ...ip4(dst), ...l4];
}

export function ether(payload: number[], type = 0x0800): number[] {
  return [0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, ...u16(type), ...payload];
}

export function geneve(vni: number, innerEthernet: number[]): number[] {
  return [0, 0, 0x65, 0x58, ...u32(vni << 8), ...innerEthernet];
}

/** Linux cooked v2: protocol, reserved, ifindex, ARPHRD_ETHER, packet type, addr len 6, addr. */
export function sll2(ifindex: number, pktType: number, ipPacket: number[]): Uint8Array {
  return new Uint8Array([0x08, 0x00, 0, 0, ...u32(ifindex), 0, 1, pktType, 6, 2, 0, 0, 0, 0, 1, 0, 0, ...ipPacket]);
}

export const OUT = 4;
export const IN = 0;
export const SYN = 0x02;
export const ACK = 0x10;
export const PSH = 0x08;
