import { connect, createServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

export interface TcpProxy {
  port: number;
  /** Simulated round trip: half of it is added to each direction (the TLS handshake pays it too). Change it only while idle. */
  roundTripMs: number;
  /**
   * Client turns so far, summed over connections: a turn starts when the client sends after the server
   * last spoke (or first). With one request at a time, that is the client's round trips to the server:
   * commands written together (a pipeline, a MULTI block, concurrent calls) are one turn.
   */
  turns(): number;
  close(): Promise<void>;
}

/** A TCP proxy on 127.0.0.1 in front of `targetPort`, to add network latency or to count round trips. */
export async function startTcpProxy(targetPort: number, roundTripMs = 0): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let turns = 0;
  const proxy: TcpProxy = {
    port: 0,
    roundTripMs,
    turns: () => turns,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  // Equal delays keep chunks in order: Node runs timers of the same duration first in, first out.
  const forward = (to: Socket, chunk: Buffer) => {
    const delay = proxy.roundTripMs / 2;
    if (delay > 0) setTimeout(() => to.write(chunk), delay);
    else to.write(chunk);
  };
  const end = (socket: Socket) => {
    const delay = proxy.roundTripMs / 2;
    if (delay > 0) setTimeout(() => socket.end(), delay);
    else socket.end();
  };

  const server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    let clientSpokeLast = false;
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on("close", () => sockets.delete(socket));
    }
    client.on("data", (chunk: Buffer) => {
      if (!clientSpokeLast) turns += 1;
      clientSpokeLast = true;
      forward(upstream, chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      clientSpokeLast = false;
      forward(client, chunk);
    });
    client.on("end", () => end(upstream));
    upstream.on("end", () => end(client));
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  proxy.port = (server.address() as AddressInfo).port;
  return proxy;
}
