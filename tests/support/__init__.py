"""Helpers the tests share: real processes (broker, SeaweedFS) on free local ports."""
