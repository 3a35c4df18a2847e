// Viewer-request: serve a folder's index page for a URL that ends with a slash, the rewrite most
// CloudFront sites in front of an S3 bucket need (/about/ -> /about/index.html). A URL without
// the slash (/about) is left alone: it names an object, not a folder.
export const handler = async (event) => {
  const request = event.Records[0].cf.request;
  if (request.uri.endsWith('/')) {
    request.uri += 'index.html';
  }
  return request;
};
