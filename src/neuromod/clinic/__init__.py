"""The clinic app: records, accounts, audit and the HTTP API (see app.py)."""
