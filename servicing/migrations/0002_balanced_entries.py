"""Every journal entry balances: a deferred constraint trigger checks the sum of its lines at commit.

This is the database's own guarantee of double entry; verify_books checks it again from the outside.
"""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION servicing_check_entry_balanced() RETURNS trigger AS $$
DECLARE
    total numeric;
    n integer;
BEGIN
    SELECT COALESCE(SUM(amount), 0), COUNT(*) INTO total, n
      FROM servicing_journalline WHERE entry_id = NEW.entry_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'journal entry % does not balance (sum of lines %)', NEW.entry_id, total
            USING ERRCODE = 'check_violation';
    END IF;
    IF n < 2 THEN
        RAISE EXCEPTION 'journal entry % has fewer than two lines', NEW.entry_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER journal_entry_balanced
    AFTER INSERT ON servicing_journalline
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION servicing_check_entry_balanced();

CREATE SEQUENCE IF NOT EXISTS servicing_contract_no_seq;
CREATE SEQUENCE IF NOT EXISTS servicing_mandate_no_seq;
"""

REVERSE = """
DROP TRIGGER IF EXISTS journal_entry_balanced ON servicing_journalline;
DROP FUNCTION IF EXISTS servicing_check_entry_balanced();
DROP SEQUENCE IF EXISTS servicing_contract_no_seq;
DROP SEQUENCE IF EXISTS servicing_mandate_no_seq;
"""


class Migration(migrations.Migration):
    dependencies = [("servicing", "0001_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
