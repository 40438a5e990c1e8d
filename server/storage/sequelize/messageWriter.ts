/**
 * Writes messages in batches: every insert asked for within one turn of the event loop goes
 * to the database together, and each caller's promise settles when its rows are stored.
 * Under load this turns many statements into few; alone, a message waits for nothing but its
 * own insert, so store-before-broadcast holds either way.
 *
 * A group of rows can hold a question and the spirit's answer to it: the answer's
 * `in_reply_to` is the question's id, which only exists once the question is stored.
 * PostgreSQL stores the whole batch, answers included, in one statement (ids drawn from the
 * table's sequence inside it); SQLite, the single-node default, stores answers in a second.
 *
 * It writes through Sequelize with the model's own table and column names, but as raw
 * parameterised statements: building model instances costs more than the insert itself.
 */
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import type { Message } from '../../../models';
import { isConnectionSqlState } from '../../errors';

export interface NewMessage {
  session_id: string;
  user_id: string | null;
  user_name: string | null;
  text: string;
  is_spirit: boolean;
  in_reply_to: number | null;
  timestamp: Date;
}

/** A row of a group; `answersPrevious` makes its in_reply_to the id of the row before it. */
interface GroupRow extends NewMessage {
  answersPrevious: boolean;
}

interface Pending {
  rows: GroupRow[];
  resolve: (ids: number[]) => void;
  reject: (err: unknown) => void;
}

/** A batch flattened: `replyTo` is the 1-based position, in the batch, of the row answered. */
interface BatchRow extends NewMessage {
  replyTo: number | null;
}

/** The pg client Sequelize pools, as far as the writer uses it. */
interface PgClient {
  query(statement: { name: string; text: string; values: unknown[] }): Promise<{ rows: Array<{ id: string | number }> }>;
  _invalid?: boolean;
}

const PREPARED_BATCH = 'seance_message_batch';
/** Statements one node has under way at once; more rows wait and go together in the next. */
const MAX_IN_FLIGHT = 2;

/** An error PostgreSQL raised for the statement (a SQLSTATE outside connection loss and shutdown): the connection is fine. */
function isStatementError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !isConnectionSqlState(code);
}

/** Bounded so one statement stays small (and, for SQLite, under its bind parameter limit). */
const MAX_BATCH_ROWS = 200;
const COLUMNS = ['session_id', 'user_id', 'user_name', 'text', 'is_spirit', 'in_reply_to', 'timestamp'] as const;

/**
 * The text form Sequelize itself writes: SQLite stores dates as text and Sequelize reads them
 * back only in this shape.
 */
function sqliteDate(date: Date): string {
  return date.toISOString().replace('T', ' ').replace('Z', ' +00:00');
}

export class MessageWriter {
  private queue: Pending[] = [];
  private scheduled = false;
  private inFlight = 0;
  private readonly table: string;
  private readonly q: (identifier: string) => string;
  private readonly tableName: string;
  /** The batch statement, built once the id sequence's name is known (looked up once: it costs a catalog scan). */
  private postgresSql: Promise<string> | null = null;

  constructor(
    private readonly sequelize: Sequelize,
    model: typeof Message,
    private readonly maxInFlight = MAX_IN_FLIGHT,
  ) {
    const qi = sequelize.getQueryInterface();
    this.q = (identifier) => qi.quoteIdentifier(identifier);
    this.tableName = model.getTableName() as string;
    this.table = this.q(this.tableName);
  }

  /** Resolves with the stored row's id. */
  async insert(row: NewMessage): Promise<number> {
    const [id] = await this.enqueue([{ ...row, answersPrevious: false }]);
    return id;
  }

  /** Stores a question and its answer together; resolves with both ids (question first). */
  async insertExchange(question: NewMessage, answer: Omit<NewMessage, 'in_reply_to'>): Promise<[number, number]> {
    const [questionId, answerId] = await this.enqueue([
      { ...question, answersPrevious: false },
      { ...answer, in_reply_to: null, answersPrevious: true },
    ]);
    return [questionId, answerId];
  }

  private enqueue(rows: GroupRow[]): Promise<number[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ rows, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  /**
   * Sends what is queued, as long as fewer than `maxInFlight` statements are under way; the
   * rest waits for one to finish and then goes as one batch. Under load that makes batches
   * grow instead of statements multiplying (each costs PostgreSQL far more than a row).
   */
  private flush(): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      // Whole groups only: a question and its answer are never split across statements.
      let take = 0;
      let rows = 0;
      while (take < this.queue.length && (take === 0 || rows + this.queue[take].rows.length <= MAX_BATCH_ROWS)) {
        rows += this.queue[take].rows.length;
        take += 1;
      }
      this.inFlight += 1;
      void this.write(this.queue.splice(0, take)).finally(() => {
        this.inFlight -= 1;
        this.flush();
      });
    }
  }

  private async write(batch: Pending[]): Promise<void> {
    const rows: BatchRow[] = [];
    for (const pending of batch) {
      for (const { answersPrevious, ...row } of pending.rows) rows.push({ ...row, replyTo: answersPrevious ? rows.length : null });
    }
    try {
      const ids = this.sequelize.getDialect() === 'postgres' ? await this.writePostgres(rows) : await this.writeInTwoSteps(rows);
      if (ids.length !== rows.length) throw new Error(`expected ${rows.length} ids, got ${ids.length}`);
      let next = 0;
      for (const pending of batch) {
        pending.resolve(ids.slice(next, next + pending.rows.length));
        next += pending.rows.length;
      }
    } catch (err) {
      for (const pending of batch) pending.reject(err);
    }
  }

  /**
   * One statement whatever the batch holds, and always the same text (the rows travel as
   * arrays), so PostgreSQL parses nothing new per batch. Ids are drawn in row order first, so
   * answers can name their question's id and the ids come back in row order.
   */
  private async buildPostgresSql(): Promise<string> {
    const { q, table } = this;
    const [found] = await this.sequelize.query<{ name: string | null }>(`SELECT pg_get_serial_sequence($1, 'id') AS name`, { bind: [this.tableName], type: QueryTypes.SELECT });
    if (!found?.name) throw new Error(`${this.tableName}.id has no sequence`);
    const columns = COLUMNS.map(q).join(', ');
    return [
      '/* seance:message-batch */',
      'WITH input AS MATERIALIZED (',
      `  SELECT nextval(${this.sequelize.escape(found.name)}::regclass) AS id, given.*`,
      '  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::integer[], $7::integer[], $8::timestamptz[])',
      '    WITH ORDINALITY AS given(session_id, user_id, user_name, body, is_spirit, in_reply_to, reply_to, stamp, n)',
      '),',
      `inserted AS (INSERT INTO ${table} (${q('id')}, ${columns})`,
      '  SELECT r.id, r.session_id, r.user_id, r.user_name, r.body, r.is_spirit, COALESCE(r.in_reply_to, asked.id::integer), r.stamp',
      '  FROM input r LEFT JOIN input asked ON asked.n = r.reply_to',
      '  RETURNING 1)',
      'SELECT id FROM input ORDER BY n',
    ].join('\n');
  }

  private async writePostgres(rows: BatchRow[]): Promise<number[]> {
    const values = [
      rows.map((r) => r.session_id),
      rows.map((r) => r.user_id),
      rows.map((r) => r.user_name),
      rows.map((r) => r.text),
      rows.map((r) => r.is_spirit),
      rows.map((r) => r.in_reply_to),
      rows.map((r) => r.replyTo),
      rows.map((r) => r.timestamp.toISOString()),
    ];
    // Straight to a pooled pg client: a named statement is parsed and planned once per
    // connection, which Sequelize's query() cannot ask for (it cut PostgreSQL's CPU on the
    // message path by about a third).
    this.postgresSql ??= this.buildPostgresSql().catch((err) => {
      this.postgresSql = null;
      throw err;
    });
    const text = await this.postgresSql;
    const pool = this.sequelize.connectionManager;
    const client = (await pool.getConnection({ type: 'write' })) as unknown as PgClient;
    try {
      const result = await client.query({ name: PREPARED_BATCH, text, values });
      return result.rows.map((r) => Number(r.id));
    } catch (err) {
      // Sequelize's own mark for a broken connection: the pool replaces it instead of lending it again.
      if (!isStatementError(err)) client._invalid = true;
      throw err;
    } finally {
      pool.releaseConnection(client);
    }
  }

  /**
   * SQLite: the rows that answer nothing in this batch first, then the answers, which now know
   * their question's id; in one transaction, so a batch is stored whole or not at all.
   */
  private async writeInTwoSteps(rows: BatchRow[]): Promise<number[]> {
    const first = rows.flatMap((row, i) => (row.replyTo === null ? [i] : []));
    const second = rows.flatMap((row, i) => (row.replyTo === null ? [] : [i]));
    if (second.length === 0) return this.insertValues(rows);
    return this.sequelize.transaction(async (transaction) => {
      const ids = new Array<number>(rows.length);
      for (const positions of [first, second]) {
        if (positions.length === 0) continue;
        const batch = positions.map((i) => ({ ...rows[i], in_reply_to: rows[i].replyTo === null ? rows[i].in_reply_to : ids[Number(rows[i].replyTo) - 1] }));
        const stored = await this.insertValues(batch, transaction);
        positions.forEach((position, k) => (ids[position] = stored[k]));
      }
      return ids;
    });
  }

  private async insertValues(rows: NewMessage[], transaction?: Transaction): Promise<number[]> {
    const bind: unknown[] = [];
    const tuples = rows.map((row) => {
      const start = bind.length;
      bind.push(row.session_id, row.user_id, row.user_name, row.text, row.is_spirit, row.in_reply_to, sqliteDate(row.timestamp));
      return `(${COLUMNS.map((_, i) => `$${start + i + 1}`).join(', ')})`;
    });
    // The leading comment names the statement in database logs, and it matters: Sequelize's
    // SQLite driver sends statements that start with "INSERT INTO" to sqlite3's run(), which
    // drops the rows RETURNING gives back.
    const sql = `/* seance:message-batch */ INSERT INTO ${this.table} (${COLUMNS.map(this.q).join(', ')}) VALUES ${tuples.join(', ')} RETURNING ${this.q('id')}`;
    // Rows come back in VALUES order: SQLite assigns the ids as it inserts the rows.
    const result = await this.sequelize.query<{ id: number }>(sql, { bind, type: QueryTypes.SELECT, transaction });
    return result.map((r) => Number(r.id));
  }
}
