/**
 * docs/asyncapi.yaml against the AsyncAPI parser (it must be a valid AsyncAPI 3 document)
 * and against the wire's types in client/src/events.ts, read with the TypeScript checker:
 * every event both ways, each payload's fields (names, required or not, types), the refusal
 * and error codes and the raw close codes. Change one without the other and this fails.
 * Also served: /asyncapi.json is the same document.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Parser } from '@asyncapi/parser';
import { expect } from 'chai';
import ts from 'typescript';
import { parse } from 'yaml';
import { EVENT_ERROR_CODES, JOIN_REFUSAL_CODES, JOIN_RETRY_CODES, RAW_CLOSE_CODES, RAW_CLOSE_JOIN_TIMEOUT, RAW_RETRY_CLOSE_CODES } from '../../client/src/events';
import { http } from '../support/clients';
import { startTestServer } from '../support/server';

const ROOT = path.join(__dirname, '..', '..');
const DOC_FILE = path.join(ROOT, 'docs', 'asyncapi.yaml');
const EVENTS_FILE = path.join(ROOT, 'client', 'src', 'events.ts');

/** A payload's structure, the same whichever side it was read from. */
type Shape =
  | { kind: 'string'; enum?: string[] }
  | { kind: 'number' | 'boolean' | 'null' }
  | { kind: 'literal'; value: boolean }
  | { kind: 'array'; items: Shape }
  | { kind: 'object'; properties: Record<string, { required: boolean; shape: Shape }> }
  | { kind: 'anyOf'; of: Shape[] };

function anyOf(parts: Shape[]): Shape {
  const flat = parts.flatMap((p) => (p.kind === 'anyOf' ? p.of : [p]));
  const unique = [...new Map(flat.map((p) => [JSON.stringify(p), p])).values()].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  return unique.length === 1 ? unique[0] : { kind: 'anyOf', of: unique };
}

/** Reads a TypeScript type as a Shape. */
function typeShape(checker: ts.TypeChecker, type: ts.Type): Shape {
  if (type.isUnion()) {
    const parts = type.types.filter((t) => !(t.flags & ts.TypeFlags.Undefined));
    if (parts.length > 0 && parts.every((t) => t.isStringLiteral())) return { kind: 'string', enum: parts.map((t) => t.value).sort() };
    if (parts.length === 2 && parts.every((t) => t.flags & ts.TypeFlags.BooleanLiteral)) return { kind: 'boolean' };
    return anyOf(parts.map((t) => typeShape(checker, t)));
  }
  if (type.flags & ts.TypeFlags.String) return { kind: 'string' };
  if (type.isStringLiteral()) return { kind: 'string', enum: [type.value] };
  if (type.flags & ts.TypeFlags.Number) return { kind: 'number' };
  if (type.flags & ts.TypeFlags.Boolean) return { kind: 'boolean' };
  if (type.flags & ts.TypeFlags.BooleanLiteral) return { kind: 'literal', value: checker.typeToString(type) === 'true' };
  if (type.flags & ts.TypeFlags.Null) return { kind: 'null' };
  if (checker.isArrayType(type)) return { kind: 'array', items: typeShape(checker, checker.getTypeArguments(type as ts.TypeReference)[0]) };
  if (type.flags & ts.TypeFlags.Object) {
    const properties: Record<string, { required: boolean; shape: Shape }> = {};
    for (const prop of checker.getPropertiesOfType(type)) {
      properties[prop.name] = { required: !(prop.flags & ts.SymbolFlags.Optional), shape: typeShape(checker, checker.getNonNullableType(checker.getTypeOfSymbol(prop))) };
      // getNonNullableType also drops null: put it back where the type has it.
      const declared = checker.getTypeOfSymbol(prop);
      if (declared.isUnion() && declared.types.some((t) => t.flags & ts.TypeFlags.Null)) properties[prop.name].shape = anyOf([properties[prop.name].shape, { kind: 'null' }]);
    }
    return { kind: 'object', properties };
  }
  throw new Error(`no shape for the type ${checker.typeToString(type)}`);
}

/** Reads a (dereferenced) JSON Schema as a Shape. */
function schemaShape(schema: any): Shape {
  if (schema.oneOf ?? schema.anyOf) return anyOf((schema.oneOf ?? schema.anyOf).map(schemaShape));
  if (schema.allOf) {
    const parts = (schema.allOf as any[]).map(schemaShape) as Array<Extract<Shape, { kind: 'object' }>>;
    return { kind: 'object', properties: Object.assign({}, ...parts.map((p) => p.properties)) };
  }
  if (Array.isArray(schema.type)) return anyOf(schema.type.map((type: string) => schemaShape({ ...schema, type })));
  switch (schema.type) {
    case 'string':
      return schema.enum || schema.const !== undefined ? { kind: 'string', enum: [...(schema.enum ?? [schema.const])].sort() } : { kind: 'string' };
    case 'integer':
    case 'number':
      return { kind: 'number' };
    case 'boolean':
      return schema.const !== undefined ? { kind: 'literal', value: schema.const } : { kind: 'boolean' };
    case 'null':
      return { kind: 'null' };
    case 'array':
      return { kind: 'array', items: schemaShape(schema.items) };
    case 'object': {
      const required = new Set<string>(schema.required ?? []);
      const properties: Record<string, { required: boolean; shape: Shape }> = {};
      for (const [name, sub] of Object.entries<any>(schema.properties ?? {})) properties[name] = { required: required.has(name), shape: schemaShape(sub) };
      return { kind: 'object', properties };
    }
  }
  throw new Error(`no shape for the schema ${JSON.stringify(schema).slice(0, 200)}`);
}

/** The first parameter of each member of an interface of event handlers, as Shapes. */
function eventPayloads(checker: ts.TypeChecker, source: ts.SourceFile, name: string): Record<string, Shape> {
  const decl = source.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === name);
  if (!decl) throw new Error(`no interface ${name} in ${EVENTS_FILE}`);
  const payloads: Record<string, Shape> = {};
  for (const prop of checker.getPropertiesOfType(checker.getTypeAtLocation(decl))) {
    const [signature] = checker.getTypeOfSymbol(prop).getCallSignatures();
    const [data] = signature.getParameters();
    payloads[prop.name] = typeShape(checker, checker.getNonNullableType(checker.getTypeOfSymbol(data)));
  }
  return payloads;
}

describe('The AsyncAPI document (docs/asyncapi.yaml)', function () {
  this.timeout(30_000);
  let doc: any;
  let server: Record<string, Shape>;
  let client: Record<string, Shape>;
  let ack: Shape;

  before(async () => {
    const { document, diagnostics } = await new Parser().parse(readFileSync(DOC_FILE, 'utf8'));
    // Errors (0) and warnings (1) fail; information (2) and hints (3) do not.
    const problems = diagnostics.filter((d) => Number(d.severity) <= 1).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`);
    expect(problems, problems.join('\n')).to.deep.equal([]);
    expect(document).to.not.equal(undefined);
    doc = document!.json();

    const program = ts.createProgram([EVENTS_FILE], { strict: true, target: ts.ScriptTarget.ES2022, noEmit: true });
    const checker = program.getTypeChecker();
    const source = program.getSourceFile(EVENTS_FILE)!;
    server = eventPayloads(checker, source, 'ServerToClientEvents');
    client = eventPayloads(checker, source, 'ClientToServerEvents');
    const ackAlias = source.statements.find((s): s is ts.TypeAliasDeclaration => ts.isTypeAliasDeclaration(s) && s.name.text === 'SendMessageAck')!;
    ack = typeShape(checker, checker.getTypeAtLocation(ackAlias));
  });

  it('is AsyncAPI 3 and describes both transports', () => {
    expect(doc.asyncapi).to.match(/^3\./);
    expect(Object.keys(doc.channels).sort()).to.deep.equal(['raw', 'socketio']);
    expect(doc.channels.socketio.address).to.equal('/socket.io');
    expect(doc.channels.raw.address).to.equal('/ws/{session_id}');
  });

  for (const transport of ['socketio', 'raw'] as const) {
    it(`has every event both ways on ${transport}, no more, each payload as typed`, () => {
      const messages = doc.channels[transport].messages as Record<string, any>;
      const joinMessages = transport === 'socketio' ? ['join', 'refused', 'send_message_ack'] : ['identify', 'join_session'];
      expect(Object.keys(messages).sort()).to.deep.equal([...Object.keys(server), ...Object.keys(client), ...joinMessages].sort());
      for (const [event, shape] of [...Object.entries(server), ...Object.entries(client)]) {
        const payload = messages[event].payload;
        // Raw frames wrap the data: {event, data, timestamp}.
        const data = transport === 'raw' ? payload.properties.data : payload;
        if (transport === 'raw') expect(payload.properties.event.const, event).to.equal(event);
        expect(schemaShape(data), `${transport} ${event}`).to.deep.equal(shape);
      }
    });
  }

  it("has the send_message acknowledgement as typed, and as the operation's reply", () => {
    expect(schemaShape(doc.channels.socketio.messages.send_message_ack.payload)).to.deep.equal(ack);
    expect(doc.operations.socketioSendMessage.reply.messages[0].name).to.equal(doc.channels.socketio.messages.send_message_ack.name);
  });

  it('names every refusal code (final or worth a retry), error code and raw close code the types do', () => {
    expect(doc.components.schemas.JoinRefusalCode.enum).to.deep.equal([...JOIN_REFUSAL_CODES]);
    expect(doc.components.schemas.JoinRetryCode.enum).to.deep.equal([...JOIN_RETRY_CODES]);
    expect(schemaShape(doc.channels.socketio.messages.refused.payload.properties.code)).to.deep.equal(
      anyOf([schemaShape(doc.components.schemas.JoinRefusalCode), schemaShape(doc.components.schemas.JoinRetryCode)]),
    );
    expect(doc.components.schemas.EventErrorCode.enum).to.deep.equal([...EVENT_ERROR_CODES]);
    expect(doc.channels.raw['x-refusal-close-codes']).to.deep.equal(RAW_CLOSE_CODES);
    expect(doc.channels.raw['x-join-timeout-close-code']).to.equal(RAW_CLOSE_JOIN_TIMEOUT);
    expect(doc.channels.raw['x-retry-close-codes']).to.deep.equal(RAW_RETRY_CLOSE_CODES);
  });

  it('is served at /asyncapi.json, beside /openapi.json', async () => {
    const app = await startTestServer({ database: 'sqlite' });
    try {
      const reply = await http(app.url, 'GET', '/asyncapi.json');
      expect(reply.status).to.equal(200);
      expect(reply.headers.get('content-type')).to.match(/^application\/json/);
      expect(reply.body).to.deep.equal(parse(readFileSync(DOC_FILE, 'utf8')));
      expect((await http(app.url, 'GET', '/openapi.json')).body.paths['/asyncapi.json'].get).to.be.an('object');
    } finally {
      await app.close();
    }
  });
});
