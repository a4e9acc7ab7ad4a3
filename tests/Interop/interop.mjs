// Interop scenarios run by the C# test suite: @grpc/grpc-js calling a running silo.
// Usage: node interop.mjs <host:port> <scenario>. Exit code 0 means the scenario held;
// otherwise the reason is printed on stderr. With CP_CA set the calls use TLS, trusting that CA,
// and present the client certificate CP_CERT with key CP_KEY when those are set (mutual TLS).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));
const protoRoot = path.resolve(here, '../../proto');
const definition = protoLoader.loadSync(
  ['controlplane/v1/api.proto', 'grpc/health/v1/health.proto'],
  { includeDirs: [protoRoot], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const loaded = grpc.loadPackageDefinition(definition);
const v1 = loaded.controlplane.v1;

const [address, scenario] = process.argv.slice(2);
const pem = (name) => process.env[name] ? fs.readFileSync(process.env[name]) : null;
const credentials = process.env.CP_CA
  ? grpc.credentials.createSsl(pem('CP_CA'), pem('CP_KEY'), pem('CP_CERT'))
  : grpc.credentials.createInsecure();
const client = (Service) => new Service(address, credentials);
const call = (stub, method, request, options = {}) => new Promise((resolve, reject) =>
  stub[method](request, new grpc.Metadata(), options, (error, response) => error ? reject(error) : resolve(response)));
const deadline = (ms) => ({ deadline: new Date(Date.now() + ms) });
const unique = `js${process.pid}`;

async function expectStatus(promise, code, fieldFragment) {
  try {
    await promise;
  } catch (error) {
    assert.equal(error.code, code, `expected status ${code}, got ${error.code}: ${error.details}`);
    if (fieldFragment) assert.ok(error.details.includes(fieldFragment), `message '${error.details}' does not name '${fieldFragment}'`);
    return error;
  }
  assert.fail(`expected status ${code}, but the call succeeded`);
}

const scenarios = {
  async unary() {
    const namespaces = client(v1.Namespaces);
    const created = await call(namespaces, 'Create', { metadata: { name: unique, labels: { team: 'interop' } } }, deadline(5000));
    assert.equal(created.metadata.name, unique);
    assert.ok(created.metadata.etag.length > 0, 'etag is set');
    const read = await call(namespaces, 'Get', { name: unique }, deadline(5000));
    assert.equal(read.metadata.uid, created.metadata.uid);
    assert.equal(read.metadata.labels.team, 'interop');
    const healthClient = client(loaded.grpc.health.v1.Health);
    const health = await call(healthClient, 'Check', { service: '' }, deadline(5000));
    assert.equal(health.status, 'SERVING');
    // Each API service answers for itself; a name the server does not serve is NOT_FOUND.
    assert.equal((await call(healthClient, 'Check', { service: 'controlplane.v1.Namespaces' }, deadline(5000))).status, 'SERVING');
    await expectStatus(call(healthClient, 'Check', { service: 'no.such.Service' }, deadline(5000)), grpc.status.NOT_FOUND, "service: 'no.such.Service' has no health status here");
    // Watch (in the shipped health.proto too) sends the current status at once.
    const watch = healthClient.Watch({ service: 'controlplane.v1.Endpoints' });
    const first = await new Promise((resolve, reject) => { watch.on('data', resolve); watch.on('error', reject); });
    assert.equal(first.status, 'SERVING');
    watch.cancel();
  },

  async errors() {
    const namespaces = client(v1.Namespaces);
    await expectStatus(call(namespaces, 'Get', { name: `missing-${unique}` }), grpc.status.NOT_FOUND, 'not found');
    await expectStatus(call(namespaces, 'Create', { metadata: { name: 'Not_A_Label' } }), grpc.status.INVALID_ARGUMENT, 'metadata.name');
    await call(namespaces, 'Create', { metadata: { name: `dup-${unique}` } });
    await expectStatus(call(namespaces, 'Create', { metadata: { name: `dup-${unique}` } }), grpc.status.ALREADY_EXISTS);
    await expectStatus(call(namespaces, 'Delete', { name: `dup-${unique}`, etag: '999999' }), grpc.status.ABORTED, 'etag');
    // A name of only white space is no name (no grain can be keyed by it): INVALID_ARGUMENT on every kind and method.
    await expectStatus(call(namespaces, 'Create', { metadata: { name: ' ' } }), grpc.status.INVALID_ARGUMENT, 'metadata.name');
    await expectStatus(call(namespaces, 'Get', { name: '\t' }), grpc.status.INVALID_ARGUMENT, 'name');
    await expectStatus(call(client(v1.Networks), 'Delete', { name: '\n' }), grpc.status.INVALID_ARGUMENT, 'name');
    await expectStatus(call(client(v1.Nodes), 'Heartbeat', { name: ' ' }), grpc.status.INVALID_ARGUMENT, 'name');
    // A page token whose kind was edited: refused, and the message quotes a bounded part of it.
    const edited = Buffer.from(`p2\0${'K'.repeat(20000)}\0\0last\0token`).toString('base64url');
    const refused = await expectStatus(call(namespaces, 'List', { page_token: edited }), grpc.status.INVALID_ARGUMENT, 'page_token');
    assert.ok(refused.details.length < 300, `the message echoes the whole token: ${refused.details.length} characters`);
    // A method the server does not have: a trailers-only UNIMPLEMENTED.
    const raw = new grpc.Client(address, credentials);
    await expectStatus(new Promise((resolve, reject) => raw.makeUnaryRequest('/controlplane.v1.Namespaces/Explode',
      (x) => x, (x) => x, Buffer.alloc(0), (error, value) => error ? reject(error) : resolve(value))), grpc.status.UNIMPLEMENTED);
  },

  async streaming() {
    const namespaces = client(v1.Namespaces);
    const stream = client(v1.Watch).Watch({ kinds: ['NAMESPACE'] });
    const events = [];
    const done = new Promise((resolve, reject) => {
      stream.on('data', async (event) => {
        events.push(event);
        if (event.type === 'BOOKMARK' && event.initial_events_end) {
          await call(namespaces, 'Create', { metadata: { name: `watched-${unique}` } });
        }
        if (event.type === 'ADDED' && event.namespace?.metadata.name === `watched-${unique}` && event.resume_token) {
          stream.cancel();
          resolve();
        }
      });
      stream.on('error', (error) => error.code === grpc.status.CANCELLED ? resolve() : reject(error));
    });
    await done;
    const end = events.findIndex((e) => e.type === 'BOOKMARK' && e.initial_events_end);
    assert.ok(end >= 0, 'the snapshot ends with an initial-events-end bookmark');
    assert.ok(events.slice(0, end).every((e) => e.type === 'ADDED'), 'the snapshot is ADDED events');
  },

  async metadata() {
    // Oversized request metadata is refused on its own call, RESOURCE_EXHAUSTED: a watch on the
    // same connection keeps running, and the next call on it works.
    const namespaces = client(v1.Namespaces);
    const stream = new v1.Watch(address, credentials, { channelOverride: namespaces.getChannel() }).Watch({ kinds: ['NAMESPACE'] });
    let broken = null;
    const synced = new Promise((resolve) => stream.on('data', (e) => { if (e.type === 'BOOKMARK' && e.initial_events_end) resolve(); }));
    stream.on('error', (error) => { if (error.code !== grpc.status.CANCELLED) broken = error; });
    await synced;
    const metadata = (fields, size) => {
      const m = new grpc.Metadata();
      for (let i = 0; i < fields; i++) m.set(`x-big-${i}`, 'a'.repeat(size));
      return m;
    };
    const list = (m) => new Promise((resolve, reject) => namespaces.List({}, m, deadline(5000), (e, r) => e ? reject(e) : resolve(r)));
    await list(metadata(1, 30000));
    for (const [fields, size] of [[1, 40000], [1, 200000], [150, 10]]) {
      await expectStatus(list(metadata(fields, size)), grpc.status.RESOURCE_EXHAUSTED, 'request metadata');
    }
    await list(new grpc.Metadata());
    assert.equal(broken, null, `the watch on the same connection broke: ${broken?.details}`);
    stream.cancel();
  },

  async deadline() {
    // A watch never ends by itself: the server must end it with DEADLINE_EXCEEDED.
    const stream = client(v1.Watch).Watch({ kinds: ['NODE'] }, deadline(300));
    const started = Date.now();
    const error = await new Promise((resolve) => {
      stream.on('data', () => {});
      stream.on('error', resolve);
      stream.on('end', () => resolve(null));
    });
    assert.ok(error, 'the stream ended with an error');
    assert.equal(error.code, grpc.status.DEADLINE_EXCEEDED, error.details);
    assert.ok(Date.now() - started < 5000, 'the deadline was enforced promptly');
  },

  // Mutual TLS (CP_CA, CP_CERT, CP_KEY): an admin's certificate writes and reads.
  async 'tls-admin'() {
    await scenarios.unary();
  },

  // A reader's certificate: a write is PERMISSION_DENIED naming the role; reads work.
  async 'tls-reader'() {
    const namespaces = client(v1.Namespaces);
    await expectStatus(call(namespaces, 'Create', { metadata: { name: `denied-${unique}` } }, deadline(5000)), grpc.status.PERMISSION_DENIED, 'role reader');
    await expectStatus(call(namespaces, 'Get', { name: `denied-${unique}` }, deadline(5000)), grpc.status.NOT_FOUND);
    await call(namespaces, 'List', {}, deadline(5000));
  },

  // No client certificate: UNAUTHENTICATED, saying so.
  async 'tls-anonymous'() {
    await expectStatus(call(client(v1.Namespaces), 'List', {}, deadline(5000)), grpc.status.UNAUTHENTICATED, 'no client certificate');
  },

  async limits() {
    // Run against a silo with Limits:RequestsPerSecond set low: a burst is refused with
    // RESOURCE_EXHAUSTED, a retry pushback and rich details, and the call succeeds after the pause.
    const namespaces = client(v1.Namespaces);
    let refused = null;
    for (let i = 0; i < 50 && !refused; i++) {
      try {
        await call(namespaces, 'Get', { name: `missing-${unique}` }, deadline(5000));
      } catch (error) {
        if (error.code === grpc.status.NOT_FOUND) continue;
        refused = error;
      }
    }
    assert.ok(refused, 'a burst of 50 calls was never refused');
    assert.equal(refused.code, grpc.status.RESOURCE_EXHAUSTED, refused.details);
    assert.ok(refused.details.includes('Limits:RequestsPerSecond'), refused.details);
    const [pushback] = refused.metadata.get('grpc-retry-pushback-ms');
    assert.ok(Number(pushback) > 0, `grpc-retry-pushback-ms is '${pushback}'`);
    assert.ok(refused.metadata.get('grpc-status-details-bin').length === 1, 'google.rpc.Status details are attached');
    await new Promise((resolve) => setTimeout(resolve, Number(pushback)));
    await expectStatus(call(namespaces, 'Get', { name: `missing-${unique}` }, deadline(5000)), grpc.status.NOT_FOUND);
  },
};

try {
  if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}`);
  await scenarios[scenario]();
  console.log(`${scenario}: ok`);
  process.exit(0);
} catch (error) {
  console.error(`${scenario}: ${error.stack ?? error}`);
  process.exit(1);
}
