/**
 * Small probe programs the emulator runs inside namespaces:
 *   craft-vxlan <dst> <vni> <innerDstMac> <innerSrcIp> <innerDstIp> <udpPort> <payload>
 *     sends one hand-built VXLAN packet (what a malicious pod would do)
 *   craft-vxlan-batch <json>
 *     sends a list of such packets ({ dst, vni, mac, src, inner, port, payload }), each `repeat` times
 *   udp-send <src> <dst> <port> <payload> <count>
 *     sends datagrams from a chosen source address (a pod that borrowed another pod's IP)
 *   udp-flow <src> <sport> <dst> <dport> <seconds>
 *     sends one datagram from src:sport, then prints every reply that reaches it
 *   udp-listen <ip> <port> <seconds>
 *     prints every datagram received, then exits
 */
import { createSocket } from 'dgram';
import { nodeMacBytes } from '../contract/mac';
import { VXLAN_PORT } from '../contract/names';

function ipBytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

function checksum(buf: Buffer): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i += 2) sum += (buf[i] << 8) + (buf[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function buildVxlanPayload(vni: number, dstMac: string, srcIp: string, dstIp: string, port: number, payload: string, sport = 40000): Buffer {
  const data = Buffer.from(payload);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(sport, 0);
  udp.writeUInt16BE(port, 2);
  udp.writeUInt16BE(8 + data.length, 4);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 8 + data.length, 2);
  ip[8] = 64;
  ip[9] = 17;
  Buffer.from(ipBytes(srcIp)).copy(ip, 12);
  Buffer.from(ipBytes(dstIp)).copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  const eth = Buffer.alloc(14);
  Buffer.from(dstMac.split(':').map((h) => parseInt(h, 16))).copy(eth, 0);
  Buffer.from(nodeMacBytes(srcIp)).copy(eth, 6);
  eth.writeUInt16BE(0x0800, 12);
  const vx = Buffer.alloc(8);
  vx[0] = 0x08;
  vx.writeUIntBE(vni, 4, 3);
  return Buffer.concat([vx, eth, ip, udp, data]);
}

export interface CraftedPacket {
  readonly dst: string;
  readonly vni: number;
  readonly mac: string;
  readonly src: string;
  readonly inner: string;
  readonly port: number;
  readonly payload: string;
  /** Inner UDP source port. @default 40000 */
  readonly sport?: number;
}

/** Sends every packet `repeat` times, 20 ms apart per round; bounded in count and time. */
function sendBatch(packets: CraftedPacket[], repeat: number): void {
  const s = createSocket('udp4');
  let round = 0;
  const next = () => {
    if (round++ >= repeat) {
      s.close();
      return;
    }
    for (const p of packets) s.send(buildVxlanPayload(p.vni, p.mac, p.src, p.inner, p.port, p.payload, p.sport), VXLAN_PORT, p.dst, (err) => err && console.error(err.message));
    setTimeout(next, 20);
  };
  next();
}

function main(argv: string[]): void {
  const [cmd, ...a] = argv;
  if (cmd === 'craft-vxlan-batch') {
    const { packets, repeat } = JSON.parse(a[0]) as { packets: CraftedPacket[]; repeat: number };
    sendBatch(packets, Math.min(10, repeat));
    return;
  }
  if (cmd === 'udp-send') {
    const [src, dst, port, payload, count] = a;
    const s = createSocket('udp4');
    s.bind(0, src, () => {
      let left = Math.min(10, Number(count));
      const next = (): void => {
        if (left-- <= 0) {
          s.close();
          return;
        }
        s.send(payload, Number(port), dst, (err) => {
          if (!err) setTimeout(next, 20);
          else {
            console.error(err.message);
            s.close();
          }
        });
      };
      next();
    });
    s.on('error', (e) => {
      console.error(e.message);
      s.close();
    });
    return;
  }
  if (cmd === 'craft-vxlan') {
    const [dst, vni, mac, src, inner, port, payload] = a;
    const s = createSocket('udp4');
    const pkt = buildVxlanPayload(Number(vni), mac, src, inner, Number(port), payload);
    s.send(pkt, VXLAN_PORT, dst, (err) => {
      if (err) console.error(err.message);
      s.close();
    });
  } else if (cmd === 'udp-flow') {
    // A client flow the node tracks: one datagram out, then print whatever comes back to it.
    const [src, sport, dst, dport, secs] = a;
    const s = createSocket('udp4');
    s.on('message', (m) => console.log(m.toString()));
    s.bind(Number(sport), src, () => {
      console.log('listening');
      s.send('open', Number(dport), dst, (err) => console.log(err ? err.message : 'sent'));
    });
    setTimeout(() => s.close(), Math.min(30, Number(secs)) * 1000);
  } else if (cmd === 'udp-listen') {
    const [ip, port, secs] = a;
    const s = createSocket('udp4');
    s.on('message', (m) => console.log(m.toString()));
    s.bind(Number(port), ip, () => console.log('listening'));
    setTimeout(() => s.close(), Number(secs) * 1000);
  } else {
    console.error('usage: probe-tools craft-vxlan|craft-vxlan-batch|udp-send|udp-flow|udp-listen ...');
    process.exit(2);
  }
}

if (require.main === module) main(process.argv.slice(2));
