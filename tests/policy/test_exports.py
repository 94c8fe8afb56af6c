"""The public surface of dicomcloak.policy is locked (httpx's test_exported_members)."""

from __future__ import annotations

import dicomcloak.policy as policy


def test_all_is_exact() -> None:
    assert set(policy.__all__) == {
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
    }
    for name in policy.__all__:
        assert getattr(policy, name) is not None
