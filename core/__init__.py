"""The floor every app stands on: tenancy, domain errors, timing, the cache guard, secrets
at rest. Imports Django and libraries only — never an app, never `supportai`."""
