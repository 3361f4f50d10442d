"""The operations console (issue #7): server-rendered pages for HQ, stores and guides,
served by `siyu serve` at /console with the API's keys, roles and scopes."""
