"""Helpers the tests share: independent recounts (oracles), known input, and real services
(a worker process, a Kafka producer, an SMTP server, a webhook receiver, a browser).

Test modules import from here and never from one another.
"""
