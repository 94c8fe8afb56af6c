"""What the caller hands to the pixel report: a :class:`ReportItem` per image, extra :class:`Section` parts.

Neither carries PHI by construction except the images themselves (which is
why the report is PHI and lives in the run directory): the label is a
pseudonym or an index, and the regions' OCR text is never read by the report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dicomcloak.errors import UsageError
from dicomcloak.pixels.model import PixelResult, Region

__all__ = ["ReportItem", "Section"]


@dataclass(frozen=True, eq=False)
class ReportItem:
    """One image of the report: before (and after) as uint8 display images, its regions and its result.

    Parameters
    ----------
    label:
        A pseudonymous label (output pseudonym, SOP Instance pseudonym) or an
        index; never a file name or a header value, which may be PHI.
    before:
        The displayed frame before redaction, rows x cols (gray) or
        rows x cols x 3 (RGB), uint8 (``frames.to_uint8`` gives one).
    after:
        The same frame after redaction, same shape, or ``None`` when nothing
        was written (``scan``, quarantine).
    regions:
        The text regions found, in image coordinates of ``before``.
    result:
        The pixel stage's outcome for the instance.
    """

    label: str
    before: NDArray[np.uint8]
    after: NDArray[np.uint8] | None
    regions: tuple[Region, ...]
    result: PixelResult

    def __post_init__(self) -> None:
        _check_image(self.before, "before")
        if self.after is not None:
            _check_image(self.after, "after")
            if self.after.shape != self.before.shape:
                raise _bad("after has another shape than before")


@dataclass(frozen=True)
class Section:
    """An extra part of the report (the batch run report adds its own): a title and trusted HTML.

    ``html`` is inserted as is (not escaped): build it with an autoescaping
    template or escape every value yourself, and put no PHI in it.
    """

    title: str
    html: str


def _check_image(image: object, name: str) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise _bad(f"{name} is not a uint8 image")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)) or 0 in image.shape:
        raise _bad(f"{name} is neither rows x cols nor rows x cols x 3")


def _bad(message: str) -> UsageError:
    return UsageError(
        f"report item: {message}", reference="report-item-invalid",
        hint="pass display images (uint8, gray or RGB) of one frame, e.g. from frames.to_uint8",
    )
