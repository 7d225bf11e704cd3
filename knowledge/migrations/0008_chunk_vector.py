"""A narrow half-precision copy of chunk vectors for exact vector search (`ChunkVector`).

Postgres keeps it in step with `knowledge_chunk`: the key to the chunk cascades on delete,
and a trigger writes the copy when a chunk is inserted or its vector (or its Q&A question's
vector), model, organization or assistant changes, and removes it when the vector is cleared.
The copies are normalised to unit length before they are halved: cosine distance does not
change with length, and a unit vector's components always fit half precision (a raw provider
vector with a component over 65,504 would not). Existing chunks are copied here.
"""

import django.db.models.deletion
import pgvector.django.halfvec
from django.db import migrations, models


SYNC = """
ALTER TABLE knowledge_chunkvector
    ADD CONSTRAINT knowledge_chunkvector_chunk_fk FOREIGN KEY (chunk_id)
    REFERENCES knowledge_chunk (id) ON DELETE CASCADE;

CREATE FUNCTION knowledge_chunkvector_sync() RETURNS trigger AS $$
BEGIN
    IF NEW.embedding IS NULL THEN
        DELETE FROM knowledge_chunkvector WHERE chunk_id = NEW.id;
    ELSE
        INSERT INTO knowledge_chunkvector
            (chunk_id, organization_id, assistant_id, embedding_model, embedding_dimensions, embedding,
             question_embedding)
        VALUES (NEW.id, NEW.organization_id, NEW.assistant_id, NEW.embedding_model,
                NEW.embedding_dimensions, l2_normalize(NEW.embedding)::halfvec,
                l2_normalize(NEW.question_embedding)::halfvec)
        ON CONFLICT (chunk_id) DO UPDATE SET
            organization_id = EXCLUDED.organization_id,
            assistant_id = EXCLUDED.assistant_id,
            embedding_model = EXCLUDED.embedding_model,
            embedding_dimensions = EXCLUDED.embedding_dimensions,
            embedding = EXCLUDED.embedding,
            question_embedding = EXCLUDED.question_embedding;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER knowledge_chunkvector_sync
    AFTER INSERT OR UPDATE OF embedding, question_embedding, embedding_model, embedding_dimensions,
        organization_id, assistant_id
    ON knowledge_chunk
    FOR EACH ROW EXECUTE FUNCTION knowledge_chunkvector_sync();

INSERT INTO knowledge_chunkvector
    (chunk_id, organization_id, assistant_id, embedding_model, embedding_dimensions, embedding,
     question_embedding)
SELECT id, organization_id, assistant_id, embedding_model, embedding_dimensions,
       l2_normalize(embedding)::halfvec, l2_normalize(question_embedding)::halfvec
FROM knowledge_chunk WHERE embedding IS NOT NULL;
"""

UNSYNC = """
DROP TRIGGER IF EXISTS knowledge_chunkvector_sync ON knowledge_chunk;
DROP FUNCTION IF EXISTS knowledge_chunkvector_sync();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('knowledge', '0007_chunk_embedding_stage'),
        ('organizations', '0011_audit_event'),
    ]

    operations = [
        migrations.CreateModel(
            name='ChunkVector',
            fields=[
                ('chunk', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, primary_key=True, related_name='+', serialize=False, to='knowledge.chunk')),
                ('assistant_id', models.UUIDField(blank=True, null=True)),
                ('embedding_model', models.CharField(max_length=200)),
                ('embedding_dimensions', models.PositiveSmallIntegerField()),
                ('embedding', pgvector.django.halfvec.HalfVectorField()),
                ('question_embedding', pgvector.django.halfvec.HalfVectorField(blank=True, null=True)),
                ('organization', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='organizations.organization')),
            ],
            options={
                'indexes': [models.Index(fields=['organization', 'embedding_model'], name='chunkvector_org_model')],
            },
        ),
        migrations.RunSQL(SYNC, reverse_sql=UNSYNC),
    ]
