"""Retention: rows that only grow with use (spent tokens, old change rows, answered webhook
deliveries, ...) are deleted by a background sweep, table by table, once their rule says they
are no longer needed (``rules.RULES``; docs/retention.md lists each rule and its setting)."""
