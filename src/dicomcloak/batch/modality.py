"""The Modality (0008,0060) of an instance as the run report counts it: a defined term, or ``other``.

Modality is a CS element, and its defined terms (PS3.3 C.7.3.1.1.1) carry no
PHI. Its value is still an input's: a hostile or careless file may hold any
text there (a surname is a valid CS value). So the report counts only the
defined terms below, current and retired, by name; anything else, a multi-
valued element included, is counted as ``other`` (architecture.md decision 7:
reports hold codes, never values).
"""

from __future__ import annotations

__all__ = ["DEFINED_TERMS", "OTHER", "UNKNOWN", "modality_code"]

#: What the report counts for a value that is not a defined term.
OTHER = "other"
#: What the report counts for an input whose header was never read (quarantined on reading).
UNKNOWN = "unknown"

#: PS3.3 C.7.3.1.1.1 Modality defined terms, current and retired (2024 editions).
DEFINED_TERMS = frozenset(
    [
        "ANN", "AR", "ASMT", "AU", "BDUS", "BI", "BMD", "CFM", "CR", "CT", "CTPROTOCOL", "DG", "DMS",
        "DOC", "DX", "ECG", "EEG", "EMG", "EOG", "EPS", "ES", "FID", "GM", "HC", "HD", "IO", "IOL",
        "IVOCT", "IVUS", "KER", "KO", "LEN", "LS", "M3D", "MG", "MR", "NM", "OAM", "OCT", "OP", "OPM",
        "OPT", "OPTBSV", "OPTENF", "OPV", "OSS", "OT", "PA", "PLAN", "POS", "PR", "PT", "PX", "REG",
        "RESP", "RF", "RG", "RTDOSE", "RTIMAGE", "RTINTENT", "RTPLAN", "RTRAD", "RTRECORD", "RTSEGANN",
        "RTSTRUCT", "RWV", "SEG", "SM", "SMR", "SR", "SRF", "STAIN", "TEXTUREMAP", "TG", "US", "VA",
        "XA", "XAPROTOCOL", "XC", "AS", "CD", "CF", "CP", "CS", "DD", "DF", "DM", "DS", "EC", "FA",
        "FS", "LP", "MA", "MS", "OPR", "ST", "VF"
    ]
)


def modality_code(value: object) -> str:
    """``value`` (a Modality as pydicom reads it) as a defined term, ``other``, or ``""`` when absent."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):  # a MultiValue, bytes of an unreadable element
        return OTHER
    code = value.strip().upper()
    return code if code in DEFINED_TERMS else OTHER
