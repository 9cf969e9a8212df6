"""The REST API, /api/v1/: thin views over the workflow modules, described by OpenAPI 3."""
