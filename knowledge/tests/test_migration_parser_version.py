"""Migration `knowledge/0012` adds `KnowledgeDocument.parser_version` without reading the whole
table under its exclusive lock (found by review: `AddField` verified the column's `>= 0` check
by a scan of every document while chat turns and ingestion waited), and leaves the schema
`AddField` would."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

pytestmark = pytest.mark.django_db

TABLE = "knowledge_knowledgedocument"


def test_the_column_is_added_without_a_scan_and_its_check_validated_outside_that_lock():
    output = StringIO()
    call_command("sqlmigrate", "knowledge", "0012", stdout=output)
    sql = output.getvalue()
    statements = [statement.strip() for statement in sql.split(";") if "ALTER TABLE" in statement]
    added = [statement for statement in statements if "ADD COLUMN" in statement]
    assert added and not [statement for statement in added if "CHECK" in statement]
    assert [statement for statement in statements if "CHECK" in statement and "NOT VALID" in statement]
    assert [statement for statement in statements if "VALIDATE CONSTRAINT" in statement]
    assert "BEGIN;" not in sql  # the validation is not inside the ADD COLUMN's transaction


def test_the_schema_is_the_one_addfield_gives():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TABLE)
        cursor.execute(
            "SELECT column_default, is_nullable FROM information_schema.columns "
            "WHERE table_name = %s AND column_name = 'parser_version'",
            [TABLE],
        )
        column = cursor.fetchone()
        checks = [
            name
            for name, constraint in constraints.items()
            if constraint["check"] and constraint["columns"] == ["parser_version"]
        ]
        # One check, found by the name a later AlterField looks for, and validated.
        assert checks == [f"{TABLE}_parser_version_check"]
        cursor.execute("SELECT convalidated FROM pg_constraint WHERE conname = %s", [checks[0]])
        assert cursor.fetchone() == (True,)
    assert column == (None, "NO")
