// The Node.js twin of index.py: send the request to another origin named by the query string.
export const handler = async (event) => {
  const request = event.Records[0].cf.request;
  const query = new URLSearchParams(request.querystring);
  if (!query.has('port')) return request;
  request.origin = {
    custom: {
      customHeaders: { 'x-switched': [{ key: 'X-Switched', value: 'yes' }] },
      domainName: 'localhost',
      keepaliveTimeout: 5,
      path: query.get('path') || '',
      port: parseInt(query.get('port'), 10),
      protocol: 'http',
      readTimeout: 30,
      sslProtocols: ['TLSv1.2'],
    },
  };
  request.headers.host = [{ key: 'Host', value: 'localhost' }];
  return request;
};
