"""Unit tests of the record codec: batches, legacy message sets, compression."""
