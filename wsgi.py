"""gunicorn entry point: `gunicorn wsgi:app` (and FLASK_APP for the `flask` commands)."""

from app.filemodes import restrict_new_files
from app.logfilters import quiet_tls_probes

restrict_new_files()
quiet_tls_probes()

from app import create_app  # noqa: E402 - the umask applies to everything created from here

app = create_app()
