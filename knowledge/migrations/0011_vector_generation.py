"""Each organization's vector generation: a number that changes whenever the vectors an exact
search would rank change (`knowledge.vector_cache`).

Two columns on `knowledge_corpusstatistic`, the row every index write of an organization locks
first (`_statistics_lock`), written only by Postgres:
- `vector_generation`: drawn from the sequence `knowledge_vector_generation`, so a value is
  never given twice, not even to a row deleted and made again;
- `vector_changed_at`: when it last changed (the cache leaves an organization whose knowledge
  is still changing to the SQL search instead of re-reading it after every batch).

A statement-level trigger on `knowledge_chunk` (one per event: Postgres allows transition
tables on single-event triggers only) draws a new generation for every organization whose rows
the statement inserted or deleted, or whose vector, question vector, model, dimensions,
organization or assistant it updated; TRUNCATE renews every organization's. It runs in the
writing transaction, so the new generation becomes visible with the rows it describes: a
reader that sees generation G sees exactly the chunks that G was drawn for.
"""

from django.db import migrations


SYNC = """
CREATE SEQUENCE knowledge_vector_generation;

ALTER TABLE knowledge_corpusstatistic
    ADD COLUMN vector_generation bigint NOT NULL DEFAULT nextval('knowledge_vector_generation'),
    ADD COLUMN vector_changed_at timestamptz NOT NULL DEFAULT now();

CREATE FUNCTION knowledge_vector_generation_bump() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE knowledge_corpusstatistic
        SET vector_generation = nextval('knowledge_vector_generation'), vector_changed_at = clock_timestamp();
    ELSIF TG_OP = 'INSERT' THEN
        UPDATE knowledge_corpusstatistic
        SET vector_generation = nextval('knowledge_vector_generation'), vector_changed_at = clock_timestamp()
        WHERE organization_id IN (SELECT organization_id FROM new_rows);
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE knowledge_corpusstatistic
        SET vector_generation = nextval('knowledge_vector_generation'), vector_changed_at = clock_timestamp()
        WHERE organization_id IN (SELECT organization_id FROM old_rows);
    ELSE
        UPDATE knowledge_corpusstatistic
        SET vector_generation = nextval('knowledge_vector_generation'), vector_changed_at = clock_timestamp()
        WHERE organization_id IN (
            SELECT unnest(ARRAY[old_row.organization_id, new_row.organization_id])
            FROM old_rows old_row JOIN new_rows new_row ON new_row.id = old_row.id
            WHERE (old_row.embedding, old_row.question_embedding, old_row.embedding_model,
                   old_row.embedding_dimensions, old_row.organization_id, old_row.assistant_id)
                IS DISTINCT FROM
                  (new_row.embedding, new_row.question_embedding, new_row.embedding_model,
                   new_row.embedding_dimensions, new_row.organization_id, new_row.assistant_id)
        );
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER knowledge_vector_generation_insert
    AFTER INSERT ON knowledge_chunk REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION knowledge_vector_generation_bump();
CREATE TRIGGER knowledge_vector_generation_update
    AFTER UPDATE ON knowledge_chunk REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION knowledge_vector_generation_bump();
CREATE TRIGGER knowledge_vector_generation_delete
    AFTER DELETE ON knowledge_chunk REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION knowledge_vector_generation_bump();
CREATE TRIGGER knowledge_vector_generation_truncate
    AFTER TRUNCATE ON knowledge_chunk
    FOR EACH STATEMENT EXECUTE FUNCTION knowledge_vector_generation_bump();
"""

UNSYNC = """
DROP TRIGGER IF EXISTS knowledge_vector_generation_insert ON knowledge_chunk;
DROP TRIGGER IF EXISTS knowledge_vector_generation_update ON knowledge_chunk;
DROP TRIGGER IF EXISTS knowledge_vector_generation_delete ON knowledge_chunk;
DROP TRIGGER IF EXISTS knowledge_vector_generation_truncate ON knowledge_chunk;
DROP FUNCTION IF EXISTS knowledge_vector_generation_bump();
ALTER TABLE knowledge_corpusstatistic DROP COLUMN IF EXISTS vector_generation,
    DROP COLUMN IF EXISTS vector_changed_at;
DROP SEQUENCE IF EXISTS knowledge_vector_generation;
"""


class Migration(migrations.Migration):

    dependencies = [
        ("knowledge", "0010_source_fingerprint"),
    ]

    operations = [
        migrations.RunSQL(SYNC, reverse_sql=UNSYNC),
    ]
