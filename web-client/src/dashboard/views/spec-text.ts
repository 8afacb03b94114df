/**
 * A deployment's spec written back as YAML a person would type (sizes in
 * KiB/MiB/GiB, CPU in cores, lists and maps as JSON, which YAML reads as
 * they are), so the owner can change it and deploy it again.
 */
import type { DeploymentSpec } from '@peerway/protocol';

const UNITS = [
  ['GiB', 1024 ** 3],
  ['MiB', 1024 ** 2],
  ['KiB', 1024],
] as const;

/** 268435456 → "256MiB": the largest unit that divides it exactly. */
function size(n: number): string {
  for (const [unit, bytes] of UNITS)
    if (n >= bytes && n % bytes === 0) return `${n / bytes}${unit}`;
  return String(n);
}

/** A value YAML reads back as the same text: plain when it is safe, else JSON-quoted. */
function text(s: string): string {
  const plain =
    /^[A-Za-z0-9/][A-Za-z0-9._/@:-]*$/.test(s) &&
    !/:$/.test(s) &&
    !/^[0-9.+-]+(e[0-9+-]*)?$/i.test(s) &&
    !/^(true|false|null|yes|no|on|off|y|n)$/i.test(s);
  return plain ? s : JSON.stringify(s);
}

/** The spec as YAML; the server parses it back to the same spec. */
export function specToYaml(s: DeploymentSpec): string {
  const lines = [
    `name: ${text(s.name)}`,
    `image: ${text(s.image)}`,
    `port: ${s.port}`,
    `replicas: ${s.replicas}`,
    `resources: { cpu: ${s.resources.cpuMillis / 1000}, memory: ${size(s.resources.memoryBytes)}, gpu: ${s.resources.gpu} }`,
  ];
  if (s.command) lines.push(`command: ${JSON.stringify(s.command)}`);
  if (s.args) lines.push(`args: ${JSON.stringify(s.args)}`);
  if (Object.keys(s.env).length) lines.push(`env: ${JSON.stringify(s.env)}`);
  const c = s.constraints;
  if (Object.keys(c.labels).length || c.nodes.length)
    lines.push(`constraints: ${JSON.stringify(c)}`);
  lines.push(
    `placement: ${s.placement}`,
    `maxPerNode: ${s.maxPerNode}`,
    `health: { ${s.health.path !== null ? `path: ${text(s.health.path)}, ` : ''}intervalS: ${s.health.intervalS}, timeoutS: ${s.health.timeoutS} }`,
    `access: ${s.access}`,
    `restart: ${s.restart}`,
  );
  return `${lines.join('\n')}\n`;
}
