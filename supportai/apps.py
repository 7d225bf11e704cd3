from django.apps import AppConfig


class SupportAIConfig(AppConfig):
    name = "supportai"
    verbose_name = "SupportAI platform"
