// The Node.js twin of index.py: report what body the function saw; replace it on request.
const h = (key, value) => [{ key, value }];

export const handler = async (event) => {
  const request = event.Records[0].cf.request;
  const body = request.body;
  const headers = request.headers;
  if (body === undefined || body === null) {
    headers['x-body-seen'] = h('X-Body-Seen', 'none');
    return request;
  }
  const seen = Buffer.from(body.data, 'base64');
  headers['x-body-seen'] = h('X-Body-Seen', String(seen.length));
  headers['x-body-truncated'] = h('X-Body-Truncated', String(body.inputTruncated).toLowerCase());
  const testCase = new URLSearchParams(request.querystring).get('case') || '';
  if (testCase === 'replace-text') {
    Object.assign(body, { action: 'replace', encoding: 'text', data: 'replaced body' });
  } else if (testCase === 'replace-base64') {
    const data = Buffer.from('\x00\xffbin', 'latin1').toString('base64');
    Object.assign(body, { action: 'replace', encoding: 'base64', data });
  } else if (testCase === 'ignored') {
    body.data = Buffer.from('ignored').toString('base64');
  }
  return request;
};
