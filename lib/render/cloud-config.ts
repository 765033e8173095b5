import { Document, ToStringOptions } from 'yaml';
import { MEMBER_CLI, RenderedFile } from './gateway-files';

export const GATEWAY_PACKAGES = ['keepalived', 'conntrackd', 'conntrack', 'nftables', 'iproute2', 'curl', 'jq', 'iputils-arping', 'ethtool', 'prometheus-node-exporter'];

const YAML_OPTIONS: ToStringOptions = { blockQuote: 'literal', lineWidth: 0 };
/** A cdktf token placeholder: a file holding one is the member's own. */
const TOKEN = '${TfToken[';

/**
 * cloud-init user data. write_files runs before packages and runcmd, so the units
 * exist when runcmd starts them. The distro's own keepalived/conntrackd services are
 * disabled: ours run from our configuration only (node_exporter too: ours listens on the
 * function-side address only, and serves crossvpc-metrics' textfile). The member's `crossvpc`
 * command (doctor --live) goes on root's PATH.
 *
 * The document is the yaml library's, rendered in pieces: a stack of 1,000 tenants has 668
 * members that ship the same ~45 KB of scripts, and stringifying them for each member was a
 * tenth of its synth. Every piece is a yaml Document of its own; a write_files entry is
 * rendered as a one-item sequence and indented under `write_files:` (render.test.ts checks
 * the result equals the whole document rendered at once).
 */
export function renderCloudConfig(files: RenderedFile[], units: string[]): string {
  return `#cloud-config\n${HEAD()}write_files:\n${files.map(writeFilesEntry).join('')}${runcmd(units)}`;
}

const HEAD = once(() => new Document({ package_update: true, packages: GATEWAY_PACKAGES }).toString(YAML_OPTIONS));

const runcmdByUnits = new Map<string, string>();
function runcmd(units: string[]): string {
  const key = units.join('\n');
  let text = runcmdByUnits.get(key);
  if (text === undefined) {
    text = new Document({
      runcmd: [
        ['ln', '-sf', MEMBER_CLI.script, MEMBER_CLI.path],
        ['systemctl', 'daemon-reload'],
        ['systemctl', 'disable', '--now', 'keepalived.service', 'conntrackd.service', 'prometheus-node-exporter.service'],
        ['systemctl', 'enable', '--now', ...units],
      ],
    }).toString(YAML_OPTIONS);
    runcmdByUnits.set(key, text);
  }
  return text;
}

/**
 * Entries without tokens (the shipped scripts and units), by content, then path and mode.
 * Keyed by the content string first: the members share its instance, whose hash V8 keeps.
 */
const sharedEntries = new Map<string, Map<string, string>>();

function writeFilesEntry(f: RenderedFile): string {
  const render = () => new Document([{ path: f.path, owner: 'root:root', permissions: f.permissions, content: f.content }])
    .toString(YAML_OPTIONS)
    .replace(/^(?=.)/gm, '  ');
  if (f.content.includes(TOKEN)) return render();
  let byPath = sharedEntries.get(f.content);
  if (!byPath) sharedEntries.set(f.content, (byPath = new Map()));
  const key = `${f.path} ${f.permissions}`;
  let text = byPath.get(key);
  if (text === undefined) byPath.set(key, (text = render()));
  return text;
}

function once(render: () => string): () => string {
  let text: string | undefined;
  return () => (text ??= render());
}
