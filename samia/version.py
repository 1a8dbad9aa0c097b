"""samia's version (recorded in every run, export and DICOM-SEG it writes)."""

__version__ = "0.1.0"
