"""Sans-I/O Kafka wire codec: bytes in, message objects out, and back. No asyncio, no sockets."""
