"""The pixel stage as the per-instance path calls it: between de-identification and sealing.

``deid`` (the batch worker), the gateway and the web service all call
:meth:`PixelStage.clean` on the de-identified data set with the original beside
it, and ``scan`` calls :meth:`PixelStage.examine` on an original; neither has a
copy of this logic. The stage decides from the header first
(:func:`~dicomcloak.pixels.risk.assess`): an instance not at risk, or any
instance under ``--pixels off``, is never decoded and its header values are
never captured, so CT and MR run at the header-only speed.

An instance the stage cannot pass on (text still readable after redaction,
pixels it cannot decode, mode ``quarantine``) raises
:class:`~dicomcloak.errors.InputError` with the stage's reason code: the
caller quarantines that input and goes on, as for any bad input (architecture.md
decision 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from dicomcloak.errors import InputError
from dicomcloak.pixels.model import PixelMode, PixelResult, PixelStatus
from dicomcloak.pixels.risk import assess
from dicomcloak.pixels.settings import PixelSettings

if TYPE_CHECKING:
    from dicomcloak.pixels.ocr.base import OcrBackend
    from dicomcloak.pixels.pipeline import Examination
    from dicomcloak.pixels.report.views import ItemView

__all__ = ["Cleaned", "PixelRefusedError", "PixelStage"]

_HINTS = {
    "pixel-phi-remains": "the verifying OCR pass still read text after redaction: inspect the image "
    "(dicomcloak scan FILE --report r.html), add a device template for it, or pass --pixels quarantine",
    "pixel-undecodable": "no installed decoder reads this transfer syntax (docs/pixels.md, 'Transfer "
    "syntaxes'); convert it to a supported one, or pass --pixels off if its pixels carry no text",
    "pixel-quarantine-policy": "the pixel policy says 'quarantine' for this kind of image "
    "(--pixels or the policy's [pixels] section)",
}
_MESSAGES = {
    "pixel-phi-remains": "burned-in text is still readable after redaction",
    "pixel-undecodable": "the pixel data cannot be decoded for burned-in text detection",
    "pixel-quarantine-policy": "the pixel policy quarantines images at risk of burned-in text",
}


@dataclass(frozen=True)
class Cleaned:
    """What the stage did to one instance, and its card for the run's pixel report (None: not shown).

    ``view`` holds thumbnails of the image before and after redaction, which
    show PHI: it goes only to the pixel report in the run directory.
    """

    result: PixelResult

    view: ItemView | None = None

    @property
    def cleaned(self) -> bool:
        """Whether the pixels were changed (the originals' Pixel Data must then be sealed)."""
        return self.result.status is PixelStatus.CLEANED


class PixelStage:
    """One process's pixel stage: the settings, and the OCR back-end loaded on first use.

    The back-end's models load once per process (about a second), only when an
    instance at risk arrives. ``report`` is how many instances with text (or
    quarantined by the stage) this process makes report cards for; the rest
    are counted only. ``workers``: how many such processes share the cores
    (each OCR engine gets its share, unless ``[pixels] threads`` says).
    """

    def __init__(self, settings: PixelSettings, *, report: int = 0, workers: int = 1) -> None:
        self.settings = settings
        self._backend: OcrBackend | None = None
        self._report_left = report
        self._workers = workers

    def mode(self, ds: Dataset) -> PixelMode:
        """The mode ``ds`` gets, from its header only (``off``: its pixels are not examined)."""
        return assess(ds, self.settings)[0]

    def clean(self, source: Dataset, deidentified: Dataset, label: str = "") -> Cleaned:
        """Clean ``deidentified``'s pixels in place; ``source`` (the original) gives the header values.

        Raises
        ------
        InputError
            ``pixel-phi-remains``, ``pixel-undecodable``, ``pixel-quarantine-policy``.
        """
        mode, risk = assess(deidentified, self.settings)
        if mode is PixelMode.OFF:
            return Cleaned(PixelResult(PixelStatus.NOT_EXAMINED, mode, risk=risk))
        examination = self._run(source, deidentified, write=True)
        result = examination.result
        if result.status is PixelStatus.QUARANTINED:
            raise _refused(result.reason or "pixel-phi-remains", self._view(examination, label))
        return Cleaned(result, self._view(examination, label))

    def examine(self, source: Dataset) -> Examination:
        """What :meth:`clean` would do to ``source``, with display images; ``source`` is left untouched."""
        from dicomcloak.pixels.pipeline import Examination

        mode, risk = assess(source, self.settings)
        if mode is PixelMode.OFF:
            return Examination(PixelResult(PixelStatus.NOT_EXAMINED, mode, risk=risk))
        return self._run(source, source, write=False)

    @property
    def backend(self) -> OcrBackend:
        """The OCR back-end named by the settings, loaded once."""
        if self._backend is None:
            from dicomcloak.pixels.ocr import load_backend, threads_per_worker

            threads = self.settings.threads or threads_per_worker(self._workers)
            self._backend = load_backend(self.settings.backend, threads=threads)
        return self._backend

    def _run(self, source: Dataset, target: Dataset, *, write: bool) -> Examination:
        from dicomcloak.pixels import pipeline
        from dicomcloak.pixels.classify import HeaderValues

        return pipeline.run(target, HeaderValues.capture(source), self.settings, self.backend, write=write)

    def _view(self, examination: Examination, label: str) -> ItemView | None:
        """A report card for an instance with text, while this process still makes cards."""
        if self._report_left <= 0 or examination.before is None or not examination.result.regions:
            return None
        from dicomcloak.pixels.report import ReportItem
        from dicomcloak.pixels.report.views import item_view

        self._report_left -= 1
        result = examination.result
        item = ReportItem(label, examination.before, examination.after, result.regions, result)
        return item_view(item)


class PixelRefusedError(InputError):
    """The pixel stage will not pass this instance on; ``view`` is its report card (None: not shown)."""

    default_reference = "pixel-phi-remains"

    def __init__(
        self, message: str, *, reference: str | None = None, hint: str = "", view: ItemView | None = None
    ) -> None:
        super().__init__(message, reference=reference, hint=hint)
        self.view = view


def _refused(reason: str, view: ItemView | None) -> PixelRefusedError:
    """The stage's refusal as the input error the caller quarantines (a code, never a value)."""
    return PixelRefusedError(
        _MESSAGES.get(reason, "the pixel stage refused this image"),
        reference=reason,
        hint=_HINTS.get(reason, "see docs/pixels.md"),
        view=view,
    )
