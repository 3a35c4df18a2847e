// The Node.js twin of index.py: tag the response so tests can see the trigger ran.
// Like Python's str.title() on a header name: x-viewer-response -> X-Viewer-Response.
const titleCase = (name) =>
  name.replace(/(^|[^a-z])([a-z])/g, (_, before, letter) => before + letter.toUpperCase());

export const handler = async (event) => {
  const cf = event.Records[0].cf;
  const response = cf.response;
  const name = 'x-' + cf.config.eventType;
  response.headers[name] = [{ key: titleCase(name), value: 'ran' }];
  return response;
};
