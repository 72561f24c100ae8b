import net from 'node:net';
import { freePort } from '../../src/db/local-cluster.js';

/**
 * What to do with a chunk a client sent: pass it on, drop it, reset its connection, or
 * pass it on after `delayMs` (the chunks after it on that connection wait their turn).
 */
export type ProxyVerdict = 'pass' | 'drop' | 'reset' | { delayMs: number };

/**
 * A TCP proxy on 127.0.0.1 to a real server on 127.0.0.1:`targetPort`, for faults between
 * a client and it: a database outage (pause() refuses and cuts every connection, resume()
 * brings it back on the same port), and `inspect`, which sees every chunk a client sends
 * before it is passed on, with the number of its connection (1 for the first accepted).
 * 'drop' swallows the chunk (the caller then does what it likes, e.g. pause()); 'reset'
 * resets that client's connection and the one to the server, as a network failure would;
 * reset(n) does that to connection n from outside.
 */
export class TcpProxy {
  port = 0;
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly resets = new Map<number, () => void>();
  private accepted = 0;

  private constructor(
    private readonly targetPort: number,
    private readonly inspect: (chunk: Buffer, connection: number) => ProxyVerdict,
  ) {}

  static async start(
    targetPort: number,
    inspect: (chunk: Buffer, connection: number) => ProxyVerdict = () => 'pass',
  ): Promise<TcpProxy> {
    const proxy = TcpProxy.paused(targetPort, inspect);
    await proxy.resume();
    return proxy;
  }

  /** To the TCP port of database URL `url`, on a port of its own that it only listens on once resumed. */
  static async to(url: string): Promise<TcpProxy> {
    const proxy = TcpProxy.paused(Number(new URL(url).port || 5432));
    proxy.port = await freePort();
    return proxy;
  }

  private static paused(
    targetPort: number,
    inspect: (chunk: Buffer, connection: number) => ProxyVerdict = () => 'pass',
  ): TcpProxy {
    return new TcpProxy(targetPort, inspect);
  }

  /** `url` with its host and port replaced by the proxy's (and no Unix-socket host). */
  via(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    u.searchParams.delete('host');
    return u.toString();
  }

  /** Resets every connection through it and refuses new ones until resume(). */
  async pause(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      if (!server) return resolve();
      server.close(() => resolve());
      for (const s of this.sockets) s.resetAndDestroy();
    });
  }

  /** Accepts connections (again, on the same port). */
  async resume(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((client) => this.connect(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /** Resets connection `n` (numbered as `inspect` sees it) and its one to the server, if open. */
  reset(n: number): void {
    this.resets.get(n)?.();
  }

  async close(): Promise<void> {
    await this.pause();
    for (const s of this.sockets) s.destroy();
  }

  private connect(client: net.Socket): void {
    const upstream = net.connect({ host: '127.0.0.1', port: this.targetPort });
    const n = ++this.accepted;
    const reset = () => {
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    };
    this.resets.set(n, reset);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.sockets.delete(s);
        this.resets.delete(n);
      });
    }
    // Chunks are passed on in order: one delayed holds back those after it.
    let queue = Promise.resolve();
    let held = 0;
    client.on('data', (chunk: Buffer) => {
      const verdict = this.inspect(chunk, n);
      if (verdict === 'drop') return;
      if (verdict === 'reset') return reset();
      const delayMs = verdict === 'pass' ? 0 : verdict.delayMs;
      if (delayMs === 0 && held === 0) {
        upstream.write(chunk);
        return;
      }
      held++;
      queue = queue.then(async () => {
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        held--;
        if (!upstream.destroyed) upstream.write(chunk);
      });
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }
}
