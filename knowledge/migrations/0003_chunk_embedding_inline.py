"""Keep chunk vectors in the row instead of TOAST.

pgvector's `vector` type defaults to EXTERNAL storage, and a chunk row (content, BM25 sparse
vector, term array, 384-d vector) is over the 2 kB TOAST threshold, so Postgres moved every
vector out of line: an exact search of a 10k-chunk organization read about 40k buffers (a TOAST
index probe and a TOAST page per row) instead of the heap pages alone, and HNSW searches paid
the same for every row they checked. MAIN keeps the vector inline and moves the other wide
columns out first; a vector too big for a page still goes to TOAST as a last resort.

Rows written before this migration keep their out-of-line vectors until rewritten
(`VACUUM FULL knowledge_chunk`, or re-embedding): see docs/knowledge.md.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0002_chunk_terms")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE knowledge_chunk ALTER COLUMN embedding SET STORAGE MAIN",
            reverse_sql="ALTER TABLE knowledge_chunk ALTER COLUMN embedding SET STORAGE EXTERNAL",
        )
    ]
