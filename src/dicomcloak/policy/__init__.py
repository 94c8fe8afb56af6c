"""The de-identification policy: PS3.15 Table E.1-1 + options + site overrides -> a frozen Policy."""

from dicomcloak.policy.cdr import Disposition, SanitizeSettings
from dicomcloak.policy.deviations import Deviation, deviations
from dicomcloak.policy.explain import (
    ExplainRow,
    explain,
    render_deviations_json,
    render_deviations_text,
    render_json,
    render_text,
)
from dicomcloak.policy.model import Policy, Rule, SiteOverrides, default_safe_private
from dicomcloak.policy.site import SitePolicy, build_policy, load_policy_file

__all__ = [
    "Deviation",
    "Disposition",
    "ExplainRow",
    "Policy",
    "Rule",
    "SanitizeSettings",
    "SiteOverrides",
    "SitePolicy",
    "build_policy",
    "default_safe_private",
    "deviations",
    "explain",
    "load_policy_file",
    "render_deviations_json",
    "render_deviations_text",
    "render_json",
    "render_text",
]
