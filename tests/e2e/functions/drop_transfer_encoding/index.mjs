// An origin-response function that rebuilds the response's headers without Transfer-Encoding,
// as serverless-express did in CodeGenieApp/serverless-express#369 (CloudFront refused it).

export const handler = async (event) => {
  const response = event.Records[0].cf.response;
  delete response.headers['transfer-encoding'];
  return response;
};
