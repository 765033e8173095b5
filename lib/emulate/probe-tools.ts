/**
 * Small probe programs the emulator runs inside namespaces:
 *   craft-vxlan <dst> <vni> <innerDstMac> <innerSrcIp> <innerDstIp> <udpPort> <payload>
 *     sends one hand-built VXLAN packet (what a malicious pod would do)
 *   udp-listen <ip> <port> <seconds>
 *     prints every datagram received, then exits
 */
import { createSocket } from 'dgram';

function ipBytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

function checksum(buf: Buffer): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i += 2) sum += (buf[i] << 8) + (buf[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function buildVxlanPayload(vni: number, dstMac: string, srcIp: string, dstIp: string, port: number, payload: string): Buffer {
  const data = Buffer.from(payload);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(40000, 0);
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
  Buffer.from([0x0e, 0xcc, ...ipBytes(srcIp)]).copy(eth, 6);
  eth.writeUInt16BE(0x0800, 12);
  const vx = Buffer.alloc(8);
  vx[0] = 0x08;
  vx.writeUIntBE(vni, 4, 3);
  return Buffer.concat([vx, eth, ip, udp, data]);
}

function main(argv: string[]): void {
  const [cmd, ...a] = argv;
  if (cmd === 'craft-vxlan') {
    const [dst, vni, mac, src, inner, port, payload] = a;
    const s = createSocket('udp4');
    const pkt = buildVxlanPayload(Number(vni), mac, src, inner, Number(port), payload);
    s.send(pkt, 4789, dst, (err) => {
      if (err) console.error(err.message);
      s.close();
    });
  } else if (cmd === 'udp-listen') {
    const [ip, port, secs] = a;
    const s = createSocket('udp4');
    s.on('message', (m) => console.log(m.toString()));
    s.bind(Number(port), ip, () => console.log('listening'));
    setTimeout(() => s.close(), Number(secs) * 1000);
  } else {
    console.error('usage: probe-tools craft-vxlan|udp-listen ...');
    process.exit(2);
  }
}

if (require.main === module) main(process.argv.slice(2));
