from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    name = "organizations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.api.ratelimit import budget_threshold_crossed
        from organizations import schema  # noqa: F401  (registers the OpenAPI auth schemes)
        from organizations.budget_alerts import budget_threshold_crossed_receive

        budget_threshold_crossed.connect(
            budget_threshold_crossed_receive, dispatch_uid="organizations.budget_alerts"
        )
