"""References checked once per statement instead of once per row (for the tables a result-file import fills).

A foreign key checks each new row on its own: one index probe and one row lock on the parent per reference per
row. Posting a million auto-debits writes about ten rows per payment with two references each, so those checks
were a fifth of the import. These references are instead declared `db_constraint=False` on the model and
checked by triggers that do the same job set-based:

- after each INSERT statement, one anti-join of the statement's new rows (a transition table) against each
  parent table: a reference to a row that does not exist fails the statement with SQLSTATE 23503
  (foreign_key_violation, an IntegrityError in Django), as a foreign key would;
- before an UPDATE that changes a reference (rare: these rows are append-only or keep their references), the
  new value is looked up;
- a reference a row only gets later, set by UPDATE on every row a bank file answers (a debit's payment and
  its result file: `answer_sql`), is checked like an insert's, after each UPDATE statement, from its new rows;
- after each DELETE statement on a parent, one semi-join of the deleted rows against each child: a parent that
  is still referenced cannot go (the PROTECT of the model, also enforced by Django's collector).

What a foreign key does and this does not: lock the parent row until commit. A transaction deleting a parent
concurrently with another inserting a reference to it could both commit. The parents here (loans, borrowers,
journal entries, payments, instalments, debits, result files) are records the lender keeps: the product deletes
none of them (journal entries refuse it outright), so that race has no path in the product.
"""

from __future__ import annotations

FUNCTIONS_SQL = r"""
CREATE OR REPLACE FUNCTION repaydesk_check_new_references() RETURNS trigger AS $$
-- TG_ARGV: column, parent table, column, parent table, … ; the statement's new rows (inserted, or as an UPDATE
-- left them) are the table new_rows
DECLARE
    i integer;
    n bigint;
    lo bigint;
    hi bigint;
    nestloop text;
    missing text;
BEGIN
    FOR i IN 0 .. TG_NARGS / 2 - 1 LOOP
        EXECUTE format('SELECT count(%1$I), min(%1$I), max(%1$I) FROM new_rows', TG_ARGV[2 * i]) INTO n, lo, hi;
        CONTINUE WHEN n = 0;
        IF hi - lo < 4 * n THEN
            -- keys packed in a stretch of the parent's primary key (a chunk's loans, their instalments, new
            -- entries): sorted and merged with that stretch, one walk along the index instead of a probe from
            -- its root per key. The statement's rows have no statistics, so the planner counts on a few hundred
            -- and would probe fifty thousand times (a third of inserting a batch's debits): nested loops are off
            -- for this one query.
            nestloop := current_setting('enable_nestloop');
            PERFORM set_config('enable_nestloop', 'off', true);
            EXECUTE format('SELECT k::text FROM (SELECT %1$I AS k FROM new_rows WHERE %1$I IS NOT NULL) r '
                           'WHERE NOT EXISTS (SELECT 1 FROM %2$I p WHERE p.id = r.k AND p.id >= $1 AND p.id <= $2) '
                           'LIMIT 1', TG_ARGV[2 * i], TG_ARGV[2 * i + 1])
               INTO missing USING lo, hi;
            PERFORM set_config('enable_nestloop', nestloop, true);
        ELSE
            -- a few keys, or keys far apart: each distinct key probed once (a payment's lines repeat its entry)
            EXECUTE format('SELECT r.k::text FROM (SELECT DISTINCT %1$I AS k FROM new_rows WHERE %1$I IS NOT NULL) r '
                           'WHERE NOT EXISTS (SELECT 1 FROM %2$I p WHERE p.id = r.k) LIMIT 1',
                           TG_ARGV[2 * i], TG_ARGV[2 * i + 1])
               INTO missing;
        END IF;
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION '% on table "%" violates reference %.% -> %: key (%)=(%) is not present',
                  lower(TG_OP), TG_TABLE_NAME, TG_TABLE_NAME, TG_ARGV[2 * i], TG_ARGV[2 * i + 1], TG_ARGV[2 * i], missing
                  USING ERRCODE = 'foreign_key_violation';
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION repaydesk_check_changed_references() RETURNS trigger AS $$
DECLARE
    i integer;
    old_row jsonb := to_jsonb(OLD);
    new_row jsonb := to_jsonb(NEW);
    value text;
    found boolean;
BEGIN
    FOR i IN 0 .. TG_NARGS / 2 - 1 LOOP
        value := new_row ->> TG_ARGV[2 * i];
        IF value IS NOT NULL AND value IS DISTINCT FROM old_row ->> TG_ARGV[2 * i] THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE id = $1::bigint)', TG_ARGV[2 * i + 1])
               INTO found USING value;
            IF NOT found THEN
                RAISE EXCEPTION 'update on table "%" violates reference %.% -> %: key (%)=(%) is not present',
                      TG_TABLE_NAME, TG_TABLE_NAME, TG_ARGV[2 * i], TG_ARGV[2 * i + 1], TG_ARGV[2 * i], value
                      USING ERRCODE = 'foreign_key_violation';
            END IF;
        END IF;
    END LOOP;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION repaydesk_protect_referenced() RETURNS trigger AS $$
-- TG_ARGV: child table, column, child table, column, … ; the statement's deleted rows are the table old_rows
DECLARE
    i integer;
    still text;
BEGIN
    FOR i IN 0 .. TG_NARGS / 2 - 1 LOOP
        EXECUTE format('SELECT o.id::text FROM old_rows o WHERE EXISTS '
                       '(SELECT 1 FROM %1$I c WHERE c.%2$I = o.id) LIMIT 1', TG_ARGV[2 * i], TG_ARGV[2 * i + 1])
           INTO still;
        IF still IS NOT NULL THEN
            RAISE EXCEPTION 'delete on table "%" violates reference %.% -> %: key (id)=(%) is still referenced',
                  TG_TABLE_NAME, TG_ARGV[2 * i], TG_ARGV[2 * i + 1], TG_TABLE_NAME, still
                  USING ERRCODE = 'foreign_key_violation';
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""

DROP_FUNCTIONS_SQL = """
DROP FUNCTION IF EXISTS repaydesk_check_new_references();
DROP FUNCTION IF EXISTS repaydesk_check_changed_references();
DROP FUNCTION IF EXISTS repaydesk_protect_referenced();
"""


def _args(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(f"'{a}', '{b}'" for a, b in pairs)


def child_sql(table: str, references: list[tuple[str, str]]) -> str:
    """Triggers checking `table`'s references [(column, parent table)] on insert and on a changed reference."""
    columns = [c for c, _ in references]
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)
    return f"""
CREATE TRIGGER references_exist AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION repaydesk_check_new_references({_args(references)});
CREATE TRIGGER references_exist_on_change BEFORE UPDATE OF {", ".join(columns)} ON {table}
    FOR EACH ROW WHEN ({changed})
    EXECUTE FUNCTION repaydesk_check_changed_references({_args(references)});
"""


def answer_sql(table: str, references: list[tuple[str, str]]) -> str:
    """Triggers checking references [(column, parent table)] that `table`'s rows get by UPDATE, a million at once
    (a bank file's answers), once per statement: inserted rows and every row an UPDATE statement leaves. (A
    transition table cannot be limited to a column list, so every UPDATE of the table passes its rows; checking
    1M of them added nothing measurable to a 1M-row UPDATE, 8 s either way.)"""
    return f"""
CREATE TRIGGER answer_references_exist AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION repaydesk_check_new_references({_args(references)});
CREATE TRIGGER answer_references_exist_on_update AFTER UPDATE ON {table}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION repaydesk_check_new_references({_args(references)});
"""


def drop_answer_sql(table: str) -> str:
    return (f"DROP TRIGGER IF EXISTS answer_references_exist ON {table};\n"
            f"DROP TRIGGER IF EXISTS answer_references_exist_on_update ON {table};\n")


def drop_child_sql(table: str) -> str:
    return (f"DROP TRIGGER IF EXISTS references_exist ON {table};\n"
            f"DROP TRIGGER IF EXISTS references_exist_on_change ON {table};\n")


def parent_sql(table: str, children: list[tuple[str, str]], *, name: str = "still_referenced") -> str:
    """A trigger refusing to delete rows of `table` that a child [(child table, column)] still references."""
    return f"""
CREATE TRIGGER {name} AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION repaydesk_protect_referenced({_args(children)});
"""


def drop_parent_sql(table: str, *, name: str = "still_referenced") -> str:
    return f"DROP TRIGGER IF EXISTS {name} ON {table};\n"
