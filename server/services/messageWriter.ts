/**
 * Writes messages in batches: every insert asked for within one turn of the event loop goes
 * to the database as one multi-row INSERT ... RETURNING, and each caller's promise settles
 * when its row is stored. Under load this turns many statements into few; alone, a message
 * waits for nothing but its own insert, so store-before-broadcast holds either way.
 *
 * It writes through Sequelize with the model's own table and column names, but as one
 * parameterised statement: building model instances costs more than the insert itself on
 * the message path.
 */
import { QueryTypes, type Sequelize } from 'sequelize';
import type { Message } from '../../models';

export interface NewMessage {
  session_id: string;
  user_id: string | null;
  user_name: string | null;
  text: string;
  is_spirit: boolean;
  in_reply_to: number | null;
  timestamp: Date;
}

const COLUMNS = ['session_id', 'user_id', 'user_name', 'text', 'is_spirit', 'in_reply_to', 'timestamp'] as const;
/** Bounded so one statement stays well under PostgreSQL's 65,535 bind parameters. */
const MAX_BATCH = 200;

/**
 * The text form Sequelize itself writes: SQLite stores dates as text and Sequelize reads them
 * back only in this shape; PostgreSQL's timestamptz accepts it as is.
 */
function storedDate(date: Date): string {
  return date.toISOString().replace('T', ' ').replace('Z', ' +00:00');
}

interface Pending {
  row: NewMessage;
  resolve: (id: number) => void;
  reject: (err: unknown) => void;
}

export class MessageWriter {
  private queue: Pending[] = [];
  private scheduled = false;
  private readonly table: string;

  constructor(
    private readonly sequelize: Sequelize,
    model: typeof Message,
  ) {
    this.table = sequelize.getQueryInterface().quoteIdentifier(model.getTableName() as string);
  }

  /** Resolves with the stored row's id. */
  insert(row: NewMessage): Promise<number> {
    return new Promise((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0) void this.write(this.queue.splice(0, MAX_BATCH));
  }

  private async write(batch: Pending[]): Promise<void> {
    const bind: unknown[] = [];
    const tuples = batch.map(({ row }) => {
      const start = bind.length;
      bind.push(row.session_id, row.user_id, row.user_name, row.text, row.is_spirit, row.in_reply_to, storedDate(row.timestamp));
      return `(${COLUMNS.map((_, i) => `$${start + i + 1}`).join(', ')})`;
    });
    const q = (name: string) => this.sequelize.getQueryInterface().quoteIdentifier(name);
    // The leading comment names the statement in database logs, and it matters: Sequelize's
    // SQLite driver sends statements that start with "INSERT INTO" to sqlite3's run(), which
    // drops the rows RETURNING gives back.
    const sql = `/* seance:message-batch */ INSERT INTO ${this.table} (${COLUMNS.map(q).join(', ')}) VALUES ${tuples.join(', ')} RETURNING ${q('id')}`;
    try {
      // Rows come back in VALUES order: the ids are assigned as the rows are inserted.
      const rows = await this.sequelize.query<{ id: number }>(sql, { bind, type: QueryTypes.SELECT });
      if (rows.length !== batch.length) throw new Error(`expected ${batch.length} ids, got ${rows.length}`);
      batch.forEach((p, i) => p.resolve(Number(rows[i].id)));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}
