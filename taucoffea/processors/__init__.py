"""processors layer of taucoffea (see docs/architecture.md)."""
