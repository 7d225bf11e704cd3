from django.apps import AppConfig


class WidgetConfig(AppConfig):
    name = "widget"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from widget import schema  # noqa: F401  (registers the widget token's OpenAPI scheme)
