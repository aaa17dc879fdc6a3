// A bare HTTP/1.1 client for the server tests (no keep-alive, so each request is its own connection).
import * as http from 'http';

/** A response: status, headers, body text and the body parsed as JSON when it is JSON. */
export interface Res { status: number; headers: http.IncomingHttpHeaders; body: string; json: any } // eslint-disable-line @typescript-eslint/no-explicit-any

/** Sends one request; Content-Length is the body's unless `headers` sets another (a lying client). */
export function httpRequest(url: string, method: string, pathname: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request(url + pathname, { method, headers: { ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}), ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode!, headers: res.headers, body: text, json });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}
