"""Burned-in text in the pixels: risk, detection, classification, redaction, verification (PS3.15 E.3.1).

PS3.15 E.3.1 (Clean Pixel Data Option) asks that identifying information
burned into the pixel data be removed. This room decides which instances are
at risk, finds text with an OCR back-end, classifies each text region as PHI
or not, redacts every frame and checks the result with a second pass. It is
an edge of the core: the engine never imports it; the per-instance path of
:mod:`dicomcloak.api` calls it between sanitizing and sealing.
"""
