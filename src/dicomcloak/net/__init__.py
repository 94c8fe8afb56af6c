"""The DIMSE gateway (issue 15, docs/gateway.md): de-identify on the way out, re-identify on the way back.

An edge like ``batch``: listeners (pynetdicom), a durable spool and forwarders
around the same per-instance path the batch worker runs
(:func:`dicomcloak.batch.worker.process_item`); nothing here de-identifies by itself.
"""

import logging as _logging
import os as _os

from pynetdicom import _config as _pynetdicom_config

# Identifiers are PHI: pynetdicom must never log the C-FIND/C-MOVE/C-GET identifiers it sends or receives
# (architecture.md decision 7); its own logs stay at WARNING unless debugging.
_pynetdicom_config.LOG_REQUEST_IDENTIFIERS = False
_pynetdicom_config.LOG_RESPONSE_IDENTIFIERS = False
if not _os.environ.get("DICOMCLOAK_DEBUG"):
    _logging.getLogger("pynetdicom").setLevel(_logging.WARNING)
