"""Reading images and labels with their geometry, writing masks and label maps back onto them.

``read_image`` / ``read_label`` take any supported file (PNG, JPEG, BMP, TIFF, NIfTI, NRRD, MHA/MHD,
DICOM) or a DICOM series folder; ``write_mask`` / ``write_label_map`` write PNG/TIFF or, with the
reference image's geometry, NIfTI/NRRD/MHA; ``write_probabilities`` writes float32 TIFF or NIfTI/NRRD/MHA.
"""

from samia.io.readers import read_image, read_image_slice, read_label
from samia.io.writers import write_label_map, write_mask, write_probabilities

__all__ = ["read_image", "read_image_slice", "read_label", "write_label_map", "write_mask", "write_probabilities"]
