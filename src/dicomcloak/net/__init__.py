"""The DIMSE gateway (issue 15, docs/gateway.md): de-identify on the way out, re-identify on the way back.

An edge like ``batch``: listeners (pynetdicom), a durable spool and forwarders
around the same per-instance path the batch worker runs
(:func:`dicomcloak.batch.worker.process_item`); nothing here de-identifies by itself.
"""
