import os

from django.core.asgi import get_asgi_application

from supportai.startup import process_start

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
process_start()
application = get_asgi_application()
