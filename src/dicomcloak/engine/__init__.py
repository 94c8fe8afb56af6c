"""dicomcloak.engine."""
