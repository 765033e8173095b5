import { Document } from 'yaml';
import { MEMBER_CLI, RenderedFile } from './gateway-files';

export const GATEWAY_PACKAGES = ['keepalived', 'conntrackd', 'conntrack', 'nftables', 'iproute2', 'curl', 'jq', 'iputils-arping', 'ethtool', 'prometheus-node-exporter'];

/**
 * cloud-init user data. write_files runs before packages and runcmd, so the units
 * exist when runcmd starts them. The distro's own keepalived/conntrackd services are
 * disabled: ours run from our configuration only (node_exporter too: ours listens on the
 * function-side address only, and serves crossvpc-metrics' textfile). The member's `crossvpc`
 * command (doctor --live) goes on root's PATH.
 */
export function renderCloudConfig(files: RenderedFile[], units: string[]): string {
  const doc = new Document({
    package_update: true,
    packages: GATEWAY_PACKAGES,
    write_files: files.map((f) => ({ path: f.path, owner: 'root:root', permissions: f.permissions, content: f.content })),
    runcmd: [
      ['ln', '-sf', MEMBER_CLI.script, MEMBER_CLI.path],
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'disable', '--now', 'keepalived.service', 'conntrackd.service', 'prometheus-node-exporter.service'],
      ['systemctl', 'enable', '--now', ...units],
    ],
  });
  return `#cloud-config\n${doc.toString({ blockQuote: 'literal', lineWidth: 0 })}`;
}
