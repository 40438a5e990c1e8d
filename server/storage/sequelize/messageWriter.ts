/**
 * Writes messages in batches (StatementBatches: what one macrotask asks for goes together, and
 * while MAX_IN_FLIGHT statements are under way, everything asked for until one ends), and each
 * caller's promise settles when its rows are stored.
 * Under load this turns many statements into few; alone, a message waits for nothing but its
 * own insert, so store-before-broadcast holds either way.
 *
 * A group of rows can hold a question and the spirit's answer to it: the answer's
 * `in_reply_to` is the question's id, which only exists once the question is stored.
 * PostgreSQL stores the whole batch, answers included, in one statement (ids drawn from the
 * table's sequence inside it); SQLite, the single-node default, stores answers in a second.
 *
 * Each row gets its `seq` in its session as it is stored: on PostgreSQL from the messages
 * table's trigger, which takes the next number from the session's row (rows go in ordered by
 * session, so two batches never wait for each other's sessions in opposite orders); on
 * SQLite from the session rows, bumped in the batch's transaction.
 *
 * A batch of one group (one message, or a question and its answer: what a batch holds unless
 * the node is busy) has a statement of its own on PostgreSQL: one update of the session's
 * counter for the group instead of one per row, and no JSON to unpack. It names the rows'
 * seqs itself, which the trigger leaves alone since the migration `seq-given-by-writer`; on
 * a database without it, the batch statement serves every batch.
 *
 * It writes through Sequelize with the model's own table and column names, but as raw
 * parameterised statements: building model instances costs more than the insert itself.
 */
import { QueryTypes, Transaction, type Sequelize } from 'sequelize';
import type { Message } from '../../../models';
import { PgStatements } from './pgStatements';
import { StatementBatches } from './statementBatches';

export interface NewMessage {
  session_id: string;
  user_id: string | null;
  user_name: string | null;
  text: string;
  is_spirit: boolean;
  in_reply_to: number | null;
  timestamp: Date;
  /** The node that owes this question its answer (absent: nothing owed). */
  answer_owner?: string | null;
}

/** A row of a group; `answersPrevious` makes its in_reply_to the id of the row before it. */
interface GroupRow extends NewMessage {
  answersPrevious: boolean;
}

/** Where a row was stored: its id, and its place in its session. */
export interface StoredRef {
  id: number;
  seq: number;
}

/** A batch flattened: `replyTo` is the 1-based position, in the batch, of the row answered. */
interface BatchRow extends NewMessage {
  replyTo: number | null;
}

const PREPARED_BATCH = 'seance_message_batch_json';
const PREPARED_GROUP = 'seance_message_group';
/** What the one-group statement's error says when the trigger numbered its rows again. */
const RENUMBERED = 'seance: seq renumbered by the trigger';
/**
 * One group: the session's counter moves on by the group's size ($8, 1 or 2) under its row
 * lock, and the rows take the numbers it passed. A second row answers the first. For a session
 * that does not exist the seq is null, and the insert fails as the batch statement's does.
 * Should the trigger number the rows again (its migration undone under a running node), the
 * last line fails the statement (so nothing is stored, and no number skipped) with RENUMBERED.
 */
const GROUP_SQL = [
  '/* seance:message-group */',
  'WITH counter AS (UPDATE sessions SET last_seq = last_seq + $8 WHERE id = $1 RETURNING last_seq),',
  'asked AS (INSERT INTO messages (session_id, seq, user_id, user_name, "text", is_spirit, in_reply_to, "timestamp", answer_owner)',
  '  SELECT $1, (SELECT last_seq FROM counter) - $8 + 1, $2, $3, $4, $5, $6, $7, $14 RETURNING id, seq),',
  'answered AS (INSERT INTO messages (session_id, seq, user_id, user_name, "text", is_spirit, in_reply_to, "timestamp")',
  '  SELECT $1, asked.seq + 1, $9, $10, $11, $12, asked.id, $13 FROM asked WHERE $8 = 2 RETURNING id, seq)',
  'SELECT asked.id, answered.id AS answer_id, answered.seq AS answer_seq,',
  `  CASE WHEN asked.seq = (SELECT last_seq FROM counter) - $8 + 1 THEN asked.seq ELSE ('${RENUMBERED} ' || asked.seq)::integer END AS seq`,
  'FROM asked LEFT JOIN answered ON true',
].join('\n');

/** True when the seq trigger keeps a seq the insert gives (the migration `seq-given-by-writer`). */
const TRIGGER_KEEPS_GIVEN_SEQ = "SELECT position('NEW.seq IS NULL' IN pg_get_functiondef('seance_assign_seq()'::regprocedure)) > 0 AS keeps";
/** Statements one node has under way at once; more rows wait and go together in the next. */
const MAX_IN_FLIGHT = 2;

/** Bounded so one statement stays small (and, for SQLite, under its bind parameter limit). */
const MAX_BATCH_ROWS = 200;
const COLUMNS = ['session_id', 'user_id', 'user_name', 'text', 'is_spirit', 'in_reply_to', 'timestamp', 'answer_owner'] as const;
/** SQLite's rows carry their seq (PostgreSQL's trigger gives it). */
const SQLITE_COLUMNS = ['session_id', 'seq', 'user_id', 'user_name', 'text', 'is_spirit', 'in_reply_to', 'timestamp', 'answer_owner'] as const;

/**
 * An owed answer on PostgreSQL: the debt is cleared and the answer inserted in one statement,
 * only while `$3` still owes it (the update waits for a takeover under way and then sees its
 * result). The trigger numbers the answer, as it numbers any insert without a seq.
 */
const OWED_ANSWER_SQL = [
  '/* seance:owed-answer */',
  'WITH owed AS (UPDATE messages SET answer_owner = NULL WHERE id = $2::integer AND session_id = $1::uuid AND answer_owner = $3::varchar RETURNING id)',
  'INSERT INTO messages (session_id, user_id, user_name, "text", is_spirit, in_reply_to, "timestamp")',
  'SELECT $1::uuid, NULL, NULL, $4::text, true, owed.id, $5::timestamptz FROM owed RETURNING id, seq',
].join('\n');

/** One message, or one message and the answer to it, of one session. */
function isOneGroup(rows: BatchRow[]): boolean {
  if (rows.length === 1) return rows[0].replyTo === null;
  return rows.length === 2 && rows[0].replyTo === null && rows[1].replyTo === 1 && rows[1].session_id === rows[0].session_id;
}

/**
 * The text form Sequelize itself writes: SQLite stores dates as text and Sequelize reads them
 * back only in this shape.
 */
function sqliteDate(date: Date): string {
  return date.toISOString().replace('T', ' ').replace('Z', ' +00:00');
}

export class MessageWriter {
  /** Groups of rows (a question and its answer are one), batched: see StatementBatches. */
  private readonly batches: StatementBatches<GroupRow[], StoredRef[]>;
  private readonly table: string;
  private readonly q: (identifier: string) => string;
  private readonly tableName: string;
  /** The batch statement, built once the id sequence's name is known (looked up once: it costs a catalog scan). */
  private postgresSql: Promise<string> | null = null;
  /** Whether the one-group statement may be used (looked up once). */
  private groupStatement: Promise<boolean> | null = null;
  private readonly statements: PgStatements;
  /** SQLite's writes of this process, one after the other (see `alone`). */
  private sqliteTurn: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly sequelize: Sequelize,
    model: typeof Message,
    maxInFlight = MAX_IN_FLIGHT,
  ) {
    // One statement per session at a time from this node: a session's next messages wait here for
    // it (rather than for the session's counter row in PostgreSQL) and then share a commit.
    this.batches = new StatementBatches((groups) => this.write(groups), {
      maxInFlight,
      maxSize: MAX_BATCH_ROWS,
      sizeOf: (group) => group.length,
      keyOf: (group) => group[0].session_id,
    });
    const qi = sequelize.getQueryInterface();
    this.q = (identifier) => qi.quoteIdentifier(identifier);
    this.tableName = model.getTableName() as string;
    this.table = this.q(this.tableName);
    this.statements = new PgStatements(sequelize);
  }

  /** Resolves with where the row was stored. */
  async insert(row: NewMessage): Promise<StoredRef> {
    const [ref] = await this.batches.add([{ ...row, answersPrevious: false }]);
    return ref;
  }

  /** Stores a question and its answer together; resolves with both (question first). */
  async insertExchange(question: NewMessage, answer: Omit<NewMessage, 'in_reply_to'>): Promise<[StoredRef, StoredRef]> {
    const [asked, answered] = await this.batches.add([
      { ...question, answersPrevious: false },
      { ...answer, in_reply_to: null, answersPrevious: true },
    ]);
    return [asked, answered];
  }

  /**
   * Stores the answer to an owed question and clears the debt in the same write, only while
   * `owner` owes it; null when it does not. Not batched: each is its own conditional write.
   */
  async insertOwedAnswer(answer: NewMessage & { in_reply_to: number }, owner: string): Promise<StoredRef | null> {
    if (this.sequelize.getDialect() === 'postgres') {
      const [row] = await this.statements.run<{ id: string | number; seq: number }>('seance_owed_answer', OWED_ANSWER_SQL, [
        answer.session_id,
        answer.in_reply_to,
        owner,
        answer.text,
        answer.timestamp,
      ]);
      return row ? { id: Number(row.id), seq: Number(row.seq) } : null;
    }
    // SQLite: a transaction that takes the write lock first, so the check and the insert are one.
    return this.alone(() =>
      this.sequelize.transaction({ type: Transaction.TYPES.IMMEDIATE }, async (transaction) => {
        const cleared = await this.sequelize.query<{ id: number }>(
          `/* seance:owed-answer */ UPDATE ${this.table} SET ${this.q('answer_owner')} = NULL WHERE ${this.q('id')} = $1 AND ${this.q('session_id')} = $2 AND ${this.q('answer_owner')} = $3 RETURNING ${this.q('id')}`,
          { bind: [answer.in_reply_to, answer.session_id, owner], type: QueryTypes.SELECT, transaction },
        );
        if (cleared.length === 0) return null;
        const row: BatchRow = { ...answer, answer_owner: null, replyTo: null };
        const [seq] = await this.takeSeqs([row], transaction);
        const [id] = await this.insertValues([{ ...row, seq }], transaction);
        return { id, seq };
      }),
    );
  }

  /**
   * Runs a write of the messages table after the others of this process on SQLite, whose every
   * transaction has a connection of its own and one writer at a time: two at once would fail
   * with SQLITE_BUSY instead of waiting. PostgreSQL runs it at once.
   */
  alone<T>(write: () => Promise<T>): Promise<T> {
    if (this.sequelize.getDialect() === 'postgres') return write();
    const run = this.sqliteTurn.then(write, write);
    this.sqliteTurn = run.catch(() => undefined);
    return run;
  }

  /** Stores the groups of one batch (whole: a question and its answer are never split); resolves with each group's refs. */
  private async write(groups: GroupRow[][]): Promise<StoredRef[][]> {
    const rows: BatchRow[] = [];
    for (const group of groups) {
      for (const { answersPrevious, ...row } of group) rows.push({ ...row, replyTo: answersPrevious ? rows.length : null });
    }
    const refs = this.sequelize.getDialect() === 'postgres' ? await this.writePostgres(rows) : await this.alone(() => this.writeSqlite(rows));
    if (refs.length !== rows.length) throw new Error(`expected ${rows.length} rows stored, got ${refs.length}`);
    let next = 0;
    return groups.map((group) => refs.slice(next, (next += group.length)));
  }

  /**
   * One statement whatever the batch holds, and always the same text (the rows travel as one
   * JSON array), so PostgreSQL parses nothing new per batch. Ids are drawn in row order first, so
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
      '  FROM json_to_recordset($1::json)',
      '    AS given(session_id uuid, user_id text, user_name text, body text, is_spirit boolean, in_reply_to integer, reply_to integer, stamp timestamptz, owner text, n integer)',
      '),',
      `inserted AS (INSERT INTO ${table} (${q('id')}, ${columns})`,
      '  SELECT r.id, r.session_id, r.user_id, r.user_name, r.body, r.is_spirit, COALESCE(r.in_reply_to, asked.id::integer), r.stamp, r.owner',
      '  FROM input r LEFT JOIN input asked ON asked.n = r.reply_to',
      '  ORDER BY r.session_id, r.n',
      `  RETURNING ${q('id')}, ${q('seq')})`,
      `SELECT input.id, inserted.${q('seq')} AS seq FROM input JOIN inserted ON inserted.${q('id')} = input.id ORDER BY input.n`,
    ].join('\n');
  }

  private async writePostgres(rows: BatchRow[]): Promise<StoredRef[]> {
    if (isOneGroup(rows) && (await this.canWriteGroups())) {
      try {
        return await this.writeGroup(rows);
      } catch (err) {
        if (!String((err as Error | null)?.message).includes(RENUMBERED)) throw err;
        // The trigger numbers every row again: the batch statement from now on.
        this.groupStatement = Promise.resolve(false);
      }
    }
    // One JSON parameter: pg turns an array parameter into PostgreSQL's array text in
    // JavaScript, element by element; JSON.stringify does the whole batch natively.
    const batch = JSON.stringify(
      rows.map((r, i) => ({
        session_id: r.session_id,
        user_id: r.user_id,
        user_name: r.user_name,
        body: r.text,
        is_spirit: r.is_spirit,
        in_reply_to: r.in_reply_to,
        reply_to: r.replyTo,
        stamp: r.timestamp,
        owner: r.answer_owner ?? null,
        n: i + 1,
      })),
    );
    // Straight to a pooled pg client: a named statement is parsed and planned once per
    // connection, which Sequelize's query() cannot ask for (it cut PostgreSQL's CPU on the
    // message path by about a third).
    this.postgresSql ??= this.buildPostgresSql().catch((err) => {
      this.postgresSql = null;
      throw err;
    });
    const text = await this.postgresSql;
    const stored = await this.statements.run<{ id: string | number; seq: string | number }>(PREPARED_BATCH, text, [batch]);
    return stored.map((r) => ({ id: Number(r.id), seq: Number(r.seq) }));
  }

  private canWriteGroups(): Promise<boolean> {
    this.groupStatement ??= this.sequelize.query<{ keeps: boolean }>(TRIGGER_KEEPS_GIVEN_SEQ, { type: QueryTypes.SELECT }).then(
      ([found]) => Boolean(found?.keeps),
      (err: unknown) => {
        this.groupStatement = null;
        throw err;
      },
    );
    return this.groupStatement;
  }

  private async writeGroup([asked, answer]: BatchRow[]): Promise<StoredRef[]> {
    const values = [asked.session_id, asked.user_id, asked.user_name, asked.text, asked.is_spirit, asked.in_reply_to, asked.timestamp, answer ? 2 : 1];
    values.push(answer?.user_id ?? null, answer?.user_name ?? null, answer?.text ?? null, answer?.is_spirit ?? null, answer?.timestamp ?? null, asked.answer_owner ?? null);
    const [row] = await this.statements.run<{ id: string | number; seq: number; answer_id: string | number | null; answer_seq: number | null }>(PREPARED_GROUP, GROUP_SQL, values);
    const refs = [{ id: Number(row.id), seq: Number(row.seq) }];
    if (answer) refs.push({ id: Number(row.answer_id), seq: Number(row.answer_seq) });
    return refs;
  }

  /**
   * SQLite, in one transaction so a batch is stored whole or not at all: each session's
   * counter is moved on by its rows, then the rows that answer nothing in this batch are
   * inserted, then the answers, which now know their question's id.
   */
  private async writeSqlite(rows: BatchRow[]): Promise<StoredRef[]> {
    return this.sequelize.transaction(async (transaction) => {
      const seqs = await this.takeSeqs(rows, transaction);
      const numbered = rows.map((row, i) => ({ ...row, seq: seqs[i] }));
      const first = numbered.flatMap((row, i) => (row.replyTo === null ? [i] : []));
      const second = numbered.flatMap((row, i) => (row.replyTo === null ? [] : [i]));
      const refs = new Array<StoredRef>(rows.length);
      for (const positions of [first, second]) {
        if (positions.length === 0) continue;
        const batch = positions.map((i) => ({ ...numbered[i], in_reply_to: numbered[i].replyTo === null ? numbered[i].in_reply_to : refs[Number(numbered[i].replyTo) - 1].id }));
        const ids = await this.insertValues(batch, transaction);
        positions.forEach((position, k) => (refs[position] = { id: ids[k], seq: numbered[position].seq }));
      }
      return refs;
    });
  }

  /** The next numbers of each session the rows belong to, in row order. */
  private async takeSeqs(rows: BatchRow[], transaction: Transaction): Promise<number[]> {
    const counts = new Map<string, number>();
    for (const row of rows) counts.set(row.session_id, (counts.get(row.session_id) ?? 0) + 1);
    const next = new Map<string, number>();
    for (const [sessionId, count] of counts) {
      // The leading comment keeps Sequelize's SQLite driver from dropping RETURNING's row (see below).
      const [bumped] = await this.sequelize.query<{ last_seq: number }>(
        `/* seance:seq */ UPDATE ${this.q('sessions')} SET ${this.q('last_seq')} = ${this.q('last_seq')} + $1 WHERE ${this.q('id')} = $2 RETURNING ${this.q('last_seq')}`,
        {
          bind: [count, sessionId],
          type: QueryTypes.SELECT,
          transaction,
        },
      );
      if (!bumped) throw new Error(`session ${sessionId} does not exist`);
      next.set(sessionId, Number(bumped.last_seq) - count + 1);
    }
    return rows.map((row) => {
      const seq = next.get(row.session_id)!;
      next.set(row.session_id, seq + 1);
      return seq;
    });
  }

  private async insertValues(rows: Array<NewMessage & { seq: number }>, transaction?: Transaction): Promise<number[]> {
    const bind: unknown[] = [];
    const tuples = rows.map((row) => {
      const start = bind.length;
      bind.push(row.session_id, row.seq, row.user_id, row.user_name, row.text, row.is_spirit, row.in_reply_to, sqliteDate(row.timestamp), row.answer_owner ?? null);
      return `(${SQLITE_COLUMNS.map((_, i) => `$${start + i + 1}`).join(', ')})`;
    });
    // The leading comment names the statement in database logs, and it matters: Sequelize's
    // SQLite driver sends statements that start with "INSERT INTO" to sqlite3's run(), which
    // drops the rows RETURNING gives back.
    const sql = `/* seance:message-batch */ INSERT INTO ${this.table} (${SQLITE_COLUMNS.map(this.q).join(', ')}) VALUES ${tuples.join(', ')} RETURNING ${this.q('id')}`;
    // Rows come back in VALUES order: SQLite assigns the ids as it inserts the rows.
    const result = await this.sequelize.query<{ id: number }>(sql, { bind, type: QueryTypes.SELECT, transaction });
    return result.map((r) => Number(r.id));
  }
}
