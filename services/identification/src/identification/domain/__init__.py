"""Pure domain layer of the identification service: no I/O beyond reading packaged data files.

Other layers (API, storage, events) call into these modules; nothing here knows about HTTP, databases or Kafka.
"""
