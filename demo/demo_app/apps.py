from django.apps import AppConfig


class DemoAppConfig(AppConfig):
    name = "demo_app"

    def ready(self):
        from . import receivers  # noqa: F401
