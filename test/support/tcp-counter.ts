// A TCP relay on 127.0.0.1 that counts the connections made through it: the independent count
// of how many connections a client really opened (TLS passes through untouched).
import { connect, createServer, type Server, type Socket } from 'node:net';

export class TcpCounter {
  connections = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  private constructor(targetPort: number) {
    this.server = createServer((client) => {
      this.connections++;
      const upstream = connect(targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => s.destroy());
        s.on('close', () => this.sockets.delete(s));
      }
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
  }

  /** Relays to 127.0.0.1:targetPort. */
  static async start(targetPort: number): Promise<TcpCounter> {
    const counter = new TcpCounter(targetPort);
    await new Promise<void>((resolve) => counter.server.listen(0, '127.0.0.1', resolve));
    counter.port = (counter.server.address() as { port: number }).port;
    return counter;
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
