"""A narrow copy of each chunk's BM25 side for lexical search (`ChunkLexical`): its term array,
GIN-indexed, and its sparse BM25 vector, with its organization and assistant.

Postgres keeps it in step with `knowledge_chunk`, as `knowledge_chunkvector` (0008): the key to
the chunk cascades on delete, and a trigger writes the copy when a chunk is inserted or its
sparse vector, terms, organization or assistant change. Existing chunks are copied here. The
GIN index on the chunks' own `terms` goes: searches look candidates up in the copies' index.
"""

import django.contrib.postgres.fields
import django.contrib.postgres.indexes
import django.db.models.deletion
import pgvector.django.sparsevec
from django.db import migrations, models


SYNC = """
ALTER TABLE knowledge_chunklexical
    ADD CONSTRAINT knowledge_chunklexical_chunk_fk FOREIGN KEY (chunk_id)
    REFERENCES knowledge_chunk (id) ON DELETE CASCADE;

CREATE FUNCTION knowledge_chunklexical_sync() RETURNS trigger AS $$
BEGIN
    INSERT INTO knowledge_chunklexical (chunk_id, organization_id, assistant_id, terms, lexical)
    VALUES (NEW.id, NEW.organization_id, NEW.assistant_id, NEW.terms, NEW.lexical)
    ON CONFLICT (chunk_id) DO UPDATE SET
        organization_id = EXCLUDED.organization_id,
        assistant_id = EXCLUDED.assistant_id,
        terms = EXCLUDED.terms,
        lexical = EXCLUDED.lexical;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER knowledge_chunklexical_sync
    AFTER INSERT OR UPDATE OF lexical, terms, organization_id, assistant_id
    ON knowledge_chunk
    FOR EACH ROW EXECUTE FUNCTION knowledge_chunklexical_sync();

INSERT INTO knowledge_chunklexical (chunk_id, organization_id, assistant_id, terms, lexical)
SELECT id, organization_id, assistant_id, terms, lexical FROM knowledge_chunk;
"""

UNSYNC = """
DROP TRIGGER IF EXISTS knowledge_chunklexical_sync ON knowledge_chunk;
DROP FUNCTION IF EXISTS knowledge_chunklexical_sync();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('knowledge', '0008_chunk_vector'),
        ('organizations', '0012_knowledge_embedder'),
    ]

    operations = [
        migrations.CreateModel(
            name='ChunkLexical',
            fields=[
                ('chunk', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, primary_key=True, related_name='+', serialize=False, to='knowledge.chunk')),
                ('assistant_id', models.UUIDField(blank=True, null=True)),
                ('terms', django.contrib.postgres.fields.ArrayField(base_field=models.IntegerField(), size=None)),
                ('lexical', pgvector.django.sparsevec.SparseVectorField(dimensions=1048576)),
                ('organization', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='organizations.organization')),
            ],
            options={
                'indexes': [
                    django.contrib.postgres.indexes.GinIndex(fields=['terms'], name='chunklexical_terms_gin'),
                    models.Index(fields=['organization'], name='chunklexical_org'),
                ],
            },
        ),
        migrations.RunSQL(SYNC, reverse_sql=UNSYNC),
        migrations.RemoveIndex(
            model_name='chunk',
            name='chunk_terms_gin',
        ),
    ]
