"""Test support: real servers (SeaweedFS) started and stopped by the tests, and their fixtures."""
