"""Delivery: RQ fan-out, long-lived sender processes, the shared rate limiter, receipts, recovery.

This package wires the broadcast core (storage, live state), smpp_gateway (the SMPP session)
and RQ together; the web enqueues its jobs by dotted path (broadcast.keys) and never imports it.
"""
