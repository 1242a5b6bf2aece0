"""`ferkit serve`: the REST API, the browser app and the human-vs-model survey in one
FastAPI process (``pip install 'ferkit[serve]'``). Analysis side: never imports torch."""
