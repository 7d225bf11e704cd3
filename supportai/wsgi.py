import os

from django.core.wsgi import get_wsgi_application

from supportai.startup import process_start

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
process_start()
application = get_wsgi_application()
