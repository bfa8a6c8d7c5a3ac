"""Consumer groups: the classic protocol and KIP-848's consumer protocol, side by side.

classic.py and consumer.py are the state machines, assignors.py the server-side
assignors, persistence.py the stored form of a group, coordinator.py the runtime that
owns timers, parked requests and I/O around them.
"""
