import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';
import { freePort } from './free-port.ts';

export interface EmbeddedBroker {
  url: string;
  stop: () => Promise<void>;
}

/** An in-process MQTT broker (aedes) on a free localhost port, for `npm start` with nothing installed. */
export async function startEmbeddedBroker(): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker();
  const server: Server = createServer(broker.handle);
  const port = await freePort();
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(port, '127.0.0.1', () => res());
  });
  return {
    url: `mqtt://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((res) => {
        broker.close(() => server.close(() => res()));
      }),
  };
}
