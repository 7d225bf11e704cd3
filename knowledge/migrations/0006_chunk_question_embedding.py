"""A Q&A pair's chunk holds its question's vector as well (`question_embedding`).

Retrieval matches a visitor's question to a Q&A pair's question as well as to its question and
answer together. The column is inline like `embedding` (0003) and has its own partial HNSW index
(384-d, rows that have one: Q&A chunks only, so the graph is small).

Existing Q&A chunks get their question vector from the re-embed job (`chunks_reembed`, every
15 minutes from Celery beat, or `manage.py knowledge_reembed` at once): until then they are
matched on question and answer together, as before. Embedding inside a migration would load
the embedder (or call a provider) while the schema is being changed.
"""

import pgvector.django.vector
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0005_chunk_language")]

    operations = [
        migrations.AddField(
            model_name="chunk",
            name="question_embedding",
            field=pgvector.django.vector.VectorField(blank=True, null=True),
        ),
        migrations.RunSQL(
            "ALTER TABLE knowledge_chunk ALTER COLUMN question_embedding SET STORAGE MAIN",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            "CREATE INDEX chunk_question_embedding_384_hnsw ON knowledge_chunk "
            "USING hnsw ((question_embedding::vector(384)) vector_cosine_ops) "
            "WHERE embedding_dimensions = 384 AND question_embedding IS NOT NULL",
            "DROP INDEX IF EXISTS chunk_question_embedding_384_hnsw",
        ),
    ]
