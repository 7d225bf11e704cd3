from django.db import migrations, models

from knowledge import duplicates


def fingerprints_fill(apps, schema_editor):
    """Sources added before fingerprints get theirs, so adding one of them again is noticed too.
    A file whose stored copy is gone keeps "" (it can never match)."""
    KnowledgeSource = apps.get_model("knowledge", "KnowledgeSource")
    batch = []
    sources = KnowledgeSource._base_manager.filter(fingerprint="").order_by("pk")
    for source in sources.iterator(chunk_size=500):
        if source.kind == "qa":
            source.fingerprint = duplicates.qa_fingerprint(question=source.question, answer=source.answer)
        elif source.kind == "url" and source.url:
            source.fingerprint = duplicates.url_fingerprint(
                normalised_url=duplicates.url_normalise(source.url), crawl=source.crawl
            )
        elif source.kind == "file" and source.file:
            try:
                with source.file.open("rb") as stored:
                    source.fingerprint = duplicates.file_fingerprint(iter(lambda: stored.read(1024 * 1024), b""))
            except OSError:
                continue
        else:
            continue
        batch.append(source)
        if len(batch) >= 500:
            KnowledgeSource._base_manager.bulk_update(batch, ["fingerprint"])
            batch = []
    if batch:
        KnowledgeSource._base_manager.bulk_update(batch, ["fingerprint"])


class Migration(migrations.Migration):
    dependencies = [
        ("assistants", "0004_model_connection"),
        ("knowledge", "0009_chunk_lexical"),
        ("organizations", "0012_knowledge_embedder"),
    ]

    operations = [
        migrations.AddField(
            model_name="knowledgesource",
            name="fingerprint",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddIndex(
            model_name="knowledgesource",
            index=models.Index(
                condition=models.Q(("fingerprint", ""), _negated=True),
                fields=["organization", "fingerprint"],
                name="ks_org_fingerprint",
            ),
        ),
        migrations.RunPython(fingerprints_fill, migrations.RunPython.noop),
    ]
