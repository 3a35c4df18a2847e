// Two published Lambda@Edge response functions, in the shapes their authors published them
// (see index.py): AWS's "Override a response header" at origin-response, and awslabs'
// modify-response-header at viewer-response.

export const handler = async (event) => {
  const cf = event.Records[0].cf;
  const response = cf.response;
  const headers = response.headers;
  if (cf.config.eventType === 'origin-response') {
    const source = 'X-Amz-Meta-Last-Modified';
    const target = 'Last-Modified';
    if (headers[source.toLowerCase()]) {
      headers[target.toLowerCase()] = [headers[source.toLowerCase()][0]];
      console.log(`Response header "${target}" was set to "${headers[target.toLowerCase()][0].value}"`);
    }
  } else {
    headers['headerToModify'] = [{ key: 'headerToModify', value: 'modified header' }];
  }
  return response;
};
