from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from assistants.services import assistant_deleting
        from knowledge.services.sources import assistant_deleting_receive

        assistant_deleting.connect(
            assistant_deleting_receive, dispatch_uid="knowledge.assistant_sources_delete"
        )
