"""cli layer of taucoffea (see docs/architecture.md)."""
