"""DICOM PS3.15 Annex E tables as packaged data, with typed accessors."""
