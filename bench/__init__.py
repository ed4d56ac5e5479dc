"""`make bench` / `python -m bench`: latency and throughput through the gateway vs the service directly."""
