// The Node.js twin of index.py: misbehave as the URI says, otherwise mark the message.
const TRIGGERS = {
  'viewer-request': 'vreq',
  'origin-request': 'oreq',
  'origin-response': 'ores',
  'viewer-response': 'vres',
};
const blocker = new Int32Array(new SharedArrayBuffer(4));

export const handler = async (event) => {
  const cf = event.Records[0].cf;
  const trigger = TRIGGERS[cf.config.eventType];
  const request = cf.request;
  const message = cf.response ?? request;
  const parts = request.uri.split('/');
  const testCase = parts[2] ?? '';
  if (testCase.startsWith(`${trigger}-`)) {
    const fault = testCase.slice(trigger.length + 1);
    if (fault === 'raise') throw new Error("the soak's function failed on purpose");
    if (fault === 'crash') process.exit(7);
    if (fault === 'timeout') Atomics.wait(blocker, 0, 0, 3000);
    if (fault === 'invalid') {
      if (Number(parts[3]) % 2) return 'not an object';
      message.headers['x-cache'] = [{ key: 'X-Cache', value: 'Hit' }];
      return message;
    }
  }
  const headers = message.headers;
  if (trigger === 'vreq' || trigger === 'oreq') {
    const seen = headers['x-soak']?.[0]?.value ?? '';
    headers['x-soak'] = [{ key: 'X-Soak', value: seen ? `${seen},${trigger}` : trigger }];
  } else {
    const name = trigger[0].toUpperCase() + trigger.slice(1);
    headers[`x-soak-${trigger}`] = [{ key: `X-Soak-${name}`, value: 'node' }];
  }
  return message;
};
