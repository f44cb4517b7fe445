"""toy layer of taucoffea (see docs/architecture.md)."""
