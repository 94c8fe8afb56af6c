"""pynetdicom must not log identifiers: they may be originals (architecture.md decision 7).

Called by everything in ``net`` that makes pynetdicom talk (listeners, the
forwarders, the Q/R service's calls to the remote), not at import, so that
loading a configuration does not import pynetdicom (docs/gateway.md, "Configuration").
"""

from __future__ import annotations

import logging
import os

__all__ = ["quiet_pynetdicom"]


def quiet_pynetdicom() -> None:
    """Switch pynetdicom's identifier logging off; its logger at WARNING unless set on purpose.

    Its INFO and DEBUG lines name the SOP Instance UIDs of what it sends,
    restored ones included. A level set by someone (debugging) is kept; with
    ``DICOMCLOAK_DEBUG`` set, identifiers are still never logged.
    """
    from pynetdicom import _config

    _config.LOG_REQUEST_IDENTIFIERS = False
    _config.LOG_RESPONSE_IDENTIFIERS = False
    logger = logging.getLogger("pynetdicom")
    if logger.level == logging.NOTSET and not os.environ.get("DICOMCLOAK_DEBUG"):
        logger.setLevel(logging.WARNING)
