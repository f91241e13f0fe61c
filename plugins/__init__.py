"""In-tree Centralita plugins: channels and backends, each found through the ``centralita`` entry points."""
