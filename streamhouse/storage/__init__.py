"""Record storage: object stores, the segment format, the write path and the read path."""
