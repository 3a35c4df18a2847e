// The Node.js twin of index.py: it bends its result as the viewer's `case` query parameter says,
// case for case the same, so the e2e suite holds both runtimes to every Lambda@Edge rule.

const PREFIX = {
  'viewer-request': 'vreq-',
  'origin-request': 'oreq-',
  'origin-response': 'ores-',
  'viewer-response': 'vres-',
};

const h = (key, value) => [{ key, value }];
const generated = (status, extra = {}) => ({ status, statusDescription: 'Generated', ...extra });
const setHeader = (target, name, value) => () => {
  target.headers[name] = value;
  return target;
};
const setField = (target, name, value) => () => {
  target[name] = value;
  return target;
};

function requestCases(req) {
  return {
    // passing
    'add-header': setHeader(req, 'x-custom', h('X-Custom', '1')),
    'add-header-no-key': setHeader(req, 'x-custom', [{ value: '1' }]),
    'change-uri': setField(req, 'uri', '/echo/changed'),
    'change-querystring': setField(req, 'querystring', 'a=1&b=%20'),
    'generated-200': () => generated('200', { body: 'made at the edge' }),
    'generated-int-status': () => generated(200, { body: 'int status' }),
    'generated-base64': () =>
      generated('200', {
        body: Buffer.from('\x00\x01binary', 'latin1').toString('base64'),
        bodyEncoding: 'base64',
      }),
    'generated-30k': () => generated('200', { body: 'x'.repeat(30000) }),
    'generated-500': () => generated('500', { body: 'failure made at the edge' }),
    // failing
    'not-object': () => null,
    list: () => [req],
    string: () => 'hello',
    'change-host': setHeader(req, 'host', h('Host', 'evil.example')),
    'delete-host': () => {
      delete req.headers.host;
      return req;
    },
    'add-via': setHeader(req, 'via', h('Via', '1.1 me')),
    'add-content-length': setHeader(req, 'content-length', h('Content-Length', '3')),
    'add-transfer-encoding': setHeader(req, 'transfer-encoding', h('Transfer-Encoding', 'chunked')),
    'add-x-cache': setHeader(req, 'x-cache', h('X-Cache', 'Hit')),
    'add-connection': setHeader(req, 'connection', h('Connection', 'close')),
    'add-x-amz-cf-foo': setHeader(req, 'x-amz-cf-foo', h('X-Amz-Cf-Foo', '1')),
    'add-x-edge-foo': setHeader(req, 'x-edge-foo', h('X-Edge-Foo', '1')),
    'add-x-forwarded-proto': setHeader(req, 'x-forwarded-proto', h('X-Forwarded-Proto', 'https')),
    'add-x-real-ip': setHeader(req, 'x-real-ip', h('X-Real-IP', '1.2.3.4')),
    'add-keep-alive': setHeader(req, 'keep-alive', h('Keep-Alive', '5')),
    'add-upgrade': setHeader(req, 'upgrade', h('Upgrade', 'h2c')),
    'header-crlf': setHeader(req, 'x-custom', h('X-Custom', 'a\r\nb')),
    'header-value-int': setHeader(req, 'x-custom', [{ key: 'X-Custom', value: 5 }]),
    'header-key-mismatch': setHeader(req, 'x-custom', h('X-Other', '1')),
    'headers-list': setField(req, 'headers', []),
    'uri-no-slash': setField(req, 'uri', 'echo'),
    'uri-int': setField(req, 'uri', 42),
    'uri-too-long': setField(req, 'uri', '/' + 'a'.repeat(8200)),
    'querystring-space': setField(req, 'querystring', 'a=b c'),
    'querystring-hash': setField(req, 'querystring', 'a=b#c'),
    'change-client-ip': setField(req, 'clientIp', '203.0.113.9'),
    'change-method': setField(req, 'method', 'DELETE'),
    'generated-status-99': () => generated('99'),
    'generated-status-600': () => generated('600'),
    'generated-status-text': () => generated('OK'),
    'generated-status-bool': () => generated(true),
    'generated-no-status-body-int': () => generated('200', { body: 12 }),
    'generated-bad-base64': () => generated('200', { body: '***', bodyEncoding: 'base64' }),
    'generated-bad-encoding': () => generated('200', { body: 'x', bodyEncoding: 'gzip' }),
    'generated-disallowed-header': () =>
      generated('200', { headers: { 'x-cache': h('X-Cache', 'Hit') } }),
    'generated-too-big': () => generated('200', { body: 'x'.repeat(41000) }),
    'generated-huge': () => generated('200', { body: 'x'.repeat(1100000) }),
  };
}

function viewerRequestOnly(req) {
  return {
    'add-cloudfront-viewer-country': setHeader(
      req,
      'cloudfront-viewer-country',
      h('CloudFront-Viewer-Country', 'FR'),
    ),
    'generated-204-with-body': () => generated('204', { body: 'not allowed' }),
  };
}

function originRequestOnly(req) {
  const setCustom = (fields) => () => {
    let custom = req.origin.custom;
    if (custom === undefined) {
      custom = {
        customHeaders: {},
        domainName: 'localhost',
        keepaliveTimeout: 5,
        path: '',
        port: 443,
        protocol: 'https',
        readTimeout: 30,
        sslProtocols: ['TLSv1.2'],
      };
      req.origin = { custom };
    }
    Object.assign(custom, fields);
    return req;
  };
  return {
    'change-accept-encoding': setHeader(req, 'accept-encoding', h('Accept-Encoding', 'br')),
    'add-if-none-match': setHeader(req, 'if-none-match', h('If-None-Match', '"x"')),
    'origin-port-22': setCustom({ port: 22 }),
    'origin-protocol-ftp': setCustom({ protocol: 'ftp' }),
    'origin-domain-colon': setCustom({ domainName: 'localhost:9000' }),
    'origin-domain-ip': setCustom({ domainName: '10.0.0.1' }),
    'origin-path-trailing-slash': setCustom({ path: '/v1/' }),
    'origin-read-timeout-0': setCustom({ readTimeout: 0 }),
    'origin-custom-header-denied': setCustom({ customHeaders: { cookie: h('Cookie', 'a=1') } }),
    'origin-two-kinds': () => {
      req.origin.s3 = { domainName: 'b.s3.amazonaws.com' };
      return req;
    },
    'origin-custom-header-ok': setCustom({
      customHeaders: { 'x-origin-token': h('X-Origin-Token', 't') },
    }),
  };
}

function responseCases(resp, trigger) {
  const cases = {
    'add-header': setHeader(resp, 'x-custom', h('X-Custom', '1')),
    'not-object': () => null,
    'add-via': setHeader(resp, 'via', h('Via', '1.1 me')),
    'add-transfer-encoding': setHeader(
      resp,
      'transfer-encoding',
      h('Transfer-Encoding', 'chunked'),
    ),
    'add-x-cache': setHeader(resp, 'x-cache', h('X-Cache', 'Hit')),
    'header-crlf': setHeader(resp, 'x-custom', h('X-Custom', 'a\rb')),
  };
  const update = (fields) => () => Object.assign(resp, fields);
  if (trigger === 'origin-response') {
    Object.assign(cases, {
      'set-status-404': update({ status: '404', statusDescription: 'Not Found' }),
      'set-status-int': update({ status: 201 }),
      'set-status-700': update({ status: '700' }),
      'set-body': update({ body: 'replaced by origin-response' }),
    });
  } else {
    Object.assign(cases, {
      'set-status-201': update({ status: '201' }),
      'add-warning': setHeader(resp, 'warning', h('Warning', '199 - x')),
      'change-content-length': setHeader(resp, 'content-length', h('Content-Length', '1')),
    });
  }
  return cases;
}

export const handler = async (event) => {
  const cf = event.Records[0].cf;
  const trigger = cf.config.eventType;
  const request = cf.request;
  const testCase = new URLSearchParams(request.querystring).get('case') || '';
  const prefix = PREFIX[trigger];
  if (!testCase.startsWith(prefix)) return 'response' in cf ? cf.response : request;
  const name = testCase.slice(prefix.length);
  let cases;
  if (trigger === 'viewer-request') {
    cases = { ...requestCases(request), ...viewerRequestOnly(request) };
  } else if (trigger === 'origin-request') {
    cases = { ...requestCases(request), ...originRequestOnly(request) };
  } else {
    cases = responseCases(cf.response, trigger);
  }
  return cases[name]();
};
