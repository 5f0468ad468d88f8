"""The API routes under /api/, one module per resource."""
