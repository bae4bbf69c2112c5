"""The real-time HTTP service: ``create_app(ServiceSettings(run_dir))``, run by ``influrec serve``.

app.py (create_app + lifespan), routes.py / influence_routes.py (thin), schemas.py (pydantic),
service.py (answers over a run + the store), store.py (SQLite events), settings.py, deps.py
(auth and app state), errors.py, metrics.py, middleware.py.
"""
