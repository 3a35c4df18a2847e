// Viewer-request: /docs/ -> /docs/index.html
export const handler = async (event) => {
  const request = event.Records[0].cf.request;
  if (request.uri.endsWith("/")) {
    console.log("rewriting", request.uri);
    request.uri += "index.html";
  }
  return request;
};
