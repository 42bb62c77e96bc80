"""JSON Schemas shipped with paracore (spec files)."""
