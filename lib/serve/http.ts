/** The server's HTTP errors: every answer other than 200 is `{"error": "..."}` with its status. */
import type { FastifyRequest } from 'fastify';

/** An answer other than 200, with its JSON error and extra headers. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}


/** The one file of a multipart body; 400 or 413 when there is none, more than one, or too much. */
export async function readMultipartImage(request: FastifyRequest, maxBodyBytes: number): Promise<Buffer> {
  let image: Buffer | undefined;
  try {
    const parts = request.parts({ limits: { fileSize: maxBodyBytes, files: 2, fields: 16, fieldSize: 64 * 1024, parts: 32, headerPairs: 64 } });
    for await (const part of parts) {
      if (part.type !== 'file') continue;
      if (image) throw new HttpError(400, 'the multipart body holds more than one file; send one image');
      image = await part.toBuffer();
    }
  } catch (e) {
    if (e instanceof HttpError) throw e;
    const err = e as Error & { code?: string; statusCode?: number };
    if (err.code === 'FST_REQ_FILE_TOO_LARGE') throw new HttpError(413, `the uploaded file is larger than ${maxBodyBytes} bytes`);
    if (err.code === 'FST_FILES_LIMIT') throw new HttpError(400, 'the multipart body holds more than one file; send one image');
    if (err.code === 'FST_PARTS_LIMIT' || err.code === 'FST_FIELDS_LIMIT') throw new HttpError(413, `the multipart body has too many parts (${err.message})`);
    if (err.statusCode && err.statusCode < 500) throw new HttpError(err.statusCode, err.message);
    throw new HttpError(400, `malformed multipart body (${err.message})`);
  }
  if (!image) throw new HttpError(400, 'the multipart body holds no file; send the image as a file field');
  return image;
}

/** fastify's and the multipart plugin's errors, as this server's JSON errors. */
export function toHttpError(err: Error & { code?: string; statusCode?: number }, request: FastifyRequest, maxBodyBytes: number): HttpError {
  if (err instanceof HttpError) return err;
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpError(413, `the body is larger than ${maxBodyBytes} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
    case 'FST_ERR_CTP_EMPTY_TYPE':
      return new HttpError(
        415,
        `Content-Type ${JSON.stringify(request.headers['content-type'] ?? '')} is not accepted: send the image as the body with Content-Type image/* or application/octet-stream, or as one file in multipart/form-data`,
      );
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HttpError(400, 'the body does not match its Content-Length');
  }
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
  return new HttpError(status, status === 500 ? 'internal server error' : err.message);
}

