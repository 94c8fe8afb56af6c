"""Device templates: the packaged list, matching by manufacturer, model and size, site templates first."""

from __future__ import annotations

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from dicomcloak.pixels.model import Rect
from dicomcloak.pixels.templates import packaged_templates, parse_templates, template_boxes


def test_packaged_templates_load_and_say_where_they_come_from() -> None:
    templates = packaged_templates()
    assert len(templates) >= 2
    assert all(template.source and template.regions for template in templates)


def test_a_matching_device_gets_its_regions() -> None:
    ds = dcmread(str(get_testdata_file("US1_UNCR.dcm")))
    ds.Manufacturer, ds.ManufacturerModelName = "Philips Medical Systems", "EPIQ 7G"
    ds.Rows, ds.Columns = 768, 1024
    boxes = template_boxes(ds, ())
    assert [box.rect for box in boxes] == [Rect(0, 0, 26, 1024)]
    assert boxes[0].source == "template:philips-epiq-us-1024x768" and boxes[0].text is None


@pytest.mark.parametrize(("rows", "model"), [(600, "EPIQ 7G"), (768, "Affiniti 70G")])
def test_another_size_or_model_does_not_match(rows: int, model: str) -> None:
    ds = dcmread(str(get_testdata_file("US1_UNCR.dcm")))
    ds.Manufacturer, ds.ManufacturerModelName, ds.Rows, ds.Columns = "Philips", model, rows, 1024
    assert template_boxes(ds, ()) == []


def test_site_templates_apply() -> None:
    ds = dcmread(str(get_testdata_file("US1_UNCR.dcm")))
    site = parse_templates([{"name": "ours", "manufacturer": ".", "model": "", "rows": int(ds.Rows),
                             "columns": int(ds.Columns), "regions": [[0, 0, 10, 10], [20, 0, 30, 10]]}])
    assert [box.source for box in template_boxes(ds, site)] == ["template:ours", "template:ours"]
