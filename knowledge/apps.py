from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, pre_delete

        from assistants.models import Assistant
        from knowledge.models import KnowledgeSource
        from knowledge.services.sources import assistant_deleting_receive, source_file_delete_receive

        # Every deletion of an assistant, not only `assistants.services.assistant_delete`'s.
        pre_delete.connect(
            assistant_deleting_receive, sender=Assistant, dispatch_uid="knowledge.assistant_sources_delete"
        )
        # Every deletion of a source row, its uploaded original with it.
        post_delete.connect(
            source_file_delete_receive, sender=KnowledgeSource, dispatch_uid="knowledge.source_file_delete"
        )
