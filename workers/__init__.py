"""The RQ shell of delivery: job entry points (`jobs`), send queues (`queues`), the worker
processes (`processes`), the long-lived sender of a carrier (`sender`) and its shared rate
limiter (`limiter`).

The delivery store and the fan-out are core services (`broadcast.deliveries`); this package
wires them, the live state (`broadcast.live`) and smpp_gateway's session to RQ. The web
enqueues its jobs by dotted path (broadcast.keys) and never imports it.
"""
