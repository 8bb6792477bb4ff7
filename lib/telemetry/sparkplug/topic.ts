/** Sparkplug B topic namespace: spBv1.0/{group_id}/{message_type}/{edge_node_id}[/{device_id}]. */

export type NodeMessageType = 'NBIRTH' | 'NDATA' | 'NDEATH';
export type DeviceMessageType = 'DBIRTH' | 'DDATA' | 'DDEATH';

export type ParsedTopic =
  | { kind: 'node'; type: NodeMessageType; group: string; node: string }
  | { kind: 'device'; type: DeviceMessageType; group: string; node: string; device: string }
  /** Commands and host STATE: not edge data, nothing for the hub to do (our own rebirth NCMDs come back here). */
  | { kind: 'ignored' }
  | { kind: 'invalid'; detail: string };

const NAMESPACE = 'spBv1.0';

export function parseTopic(topic: string): ParsedTopic {
  const parts = topic.split('/');
  // Sparkplug 2.x host state lived outside the namespace as STATE/{host}.
  if (parts[0] === 'STATE') return { kind: 'ignored' };
  if (parts[0] !== NAMESPACE) return { kind: 'invalid', detail: `not a ${NAMESPACE} topic` };
  if (parts[1] === 'STATE') return { kind: 'ignored' };
  const [, group, type, node, device] = parts;
  switch (type) {
    case 'NCMD':
    case 'DCMD':
      return { kind: 'ignored' };
    case 'NBIRTH':
    case 'NDATA':
    case 'NDEATH':
      if (parts.length !== 4 || !group || !node) {
        return { kind: 'invalid', detail: `${type} topic must be ${NAMESPACE}/{group}/${type}/{node}` };
      }
      return { kind: 'node', type, group, node };
    case 'DBIRTH':
    case 'DDATA':
    case 'DDEATH':
      if (parts.length !== 5 || !group || !node || !device) {
        return { kind: 'invalid', detail: `${type} topic must be ${NAMESPACE}/{group}/${type}/{node}/{device}` };
      }
      return { kind: 'device', type, group, node, device };
    default:
      return { kind: 'invalid', detail: `unknown message type ${JSON.stringify(type ?? '')}` };
  }
}

export function ncmdTopic(group: string, node: string): string {
  return `${NAMESPACE}/${group}/NCMD/${node}`;
}
