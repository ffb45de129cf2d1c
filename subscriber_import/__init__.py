"""Carriers' subscriber lists and counts: read, normalise, validate and store them in bulk.

Entry points call `subscriber_import.service.import_file`; everything else is its parts.
"""
