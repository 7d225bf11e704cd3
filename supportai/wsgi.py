import os

from django.core.wsgi import get_wsgi_application

from supportai.request_bodies import ChunkedBodies
from supportai.startup import process_start

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
process_start()
application = ChunkedBodies(get_wsgi_application())
