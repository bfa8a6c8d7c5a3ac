"""Transactions: the coordinator's state machine (state.py) and its runtime (coordinator.py)."""
